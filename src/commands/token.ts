/** `token create`: a new random agent token, shown once; only its sha256 goes into the policy. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sha256Hex } from '../policy/decide.js';
import { AGENT_ID } from '../policy/load-policies.js';
import { PERSON_NAME } from '../people/load-people.js';
import { UsageError, type CommandOutput } from './output.js';

export function tokenCreate(agent: string | undefined, policiesDir: string, io: CommandOutput): number {
  if (agent === undefined || !AGENT_ID.test(agent)) throw new UsageError('token create needs --agent NAME (1-64 lower-case letters, digits, ".", "_" or "-").');
  const token = `mim_${randomBytes(32).toString('base64url')}`;
  io.out(`token: ${token}`);
  io.out(`token_sha256: ${sha256Hex(token)}`);
  io.err('');
  io.err(`This token is shown once and is not stored anywhere. Give it to agent "${agent}" (MOLLIE_MCP_TOKEN for stdio; "Authorization: Bearer <token>" over HTTP),`);
  io.err(`and put the token_sha256 line in its policy file (${join(policiesDir, `${agent}.yaml`)}).`);
  return 0;
}

/** `token create --person NAME`: a personal token for signing in to the console and `approve --as NAME`. */
export function personTokenCreate(person: string, peopleFile: string | null, io: CommandOutput): number {
  if (!PERSON_NAME.test(person)) throw new UsageError('token create --person needs a NAME (1-64 lower-case letters, digits, ".", "_" or "-").');
  const token = `mip_${randomBytes(32).toString('base64url')}`;
  io.out(`token: ${token}`);
  io.out(`token_sha256: ${sha256Hex(token)}`);
  io.err('');
  io.err(`This token is shown once and is not stored anywhere. Give it to ${person} only: it signs ${person} in to the console, and, for an approver, approves with \`approve --as ${person}\`.`);
  io.err(`Put the token_sha256 line in ${person}'s entry in the people file (${peopleFile ?? 'the file MOLLIE_MCP_PEOPLE names'}), with their roles: approver, auditor, or both.`);
  return 0;
}
