/**
 * Who is calling over HTTP: the bearer token of each request, hashed and compared in constant time with every
 * policy's token_sha256. The token itself is never stored, logged or echoed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../policy/decide.js';
import type { AgentPolicy, PolicySet } from '../policy/policy.js';

export type Presented = { kind: 'none' } | { kind: 'malformed' } | { kind: 'token'; token: string };

/** RFC 6750's b64token, bounded: anything else is not a bearer token we could have issued. */
const TOKEN = /^[A-Za-z0-9\-._~+/]{16,512}=*$/;

export function presentedToken(headers: IncomingHttpHeaders): Presented {
  const header = headers.authorization;
  if (header === undefined || header.trim() === '') return { kind: 'none' };
  const match = /^Bearer +(\S+)\s*$/i.exec(header);
  if (!match || !TOKEN.test(match[1]!)) return { kind: 'malformed' };
  return { kind: 'token', token: match[1]! };
}

/** The agent whose policy holds this token's sha256; every agent is compared, so timing does not tell which matched. */
export function agentForToken(policies: PolicySet, token: string): AgentPolicy | null {
  const presented = Buffer.from(sha256Hex(token), 'hex');
  let found: AgentPolicy | null = null;
  for (const agent of policies.agents.values()) {
    if (agent.tokenSha256 === null) continue;
    if (timingSafeEqual(presented, Buffer.from(agent.tokenSha256, 'hex'))) found = agent;
  }
  return found;
}
