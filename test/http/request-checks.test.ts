/** DNS-rebinding checks: which Host and Origin headers a browser could send that this server must refuse. */
import { describe, expect, it } from 'vitest';
import { agentForToken, presentedToken } from '../../src/http/bearer.js';
import { checkHeaders, originRules } from '../../src/http/request-checks.js';
import { sha256Hex } from '../../src/policy/decide.js';
import type { AgentPolicy, PolicySet } from '../../src/policy/policy.js';

const rules = originRules({ bindHost: '127.0.0.1', allowedOrigins: ['https://console.example.com'], publicUrls: ['https://hooks.example.com/webhooks/mollie', null] });

describe('Host and Origin', () => {
  it.each([
    [{ host: '127.0.0.1:3333' }, null],
    [{ host: 'localhost:3333' }, null],
    [{ host: '[::1]:3333' }, null],
    [{ host: 'hooks.example.com' }, null],
    [{ host: 'console.example.com' }, null],
    [{ host: '127.0.0.1:3333', origin: 'http://127.0.0.1:3333' }, null],
    [{ host: 'localhost:3333', origin: 'https://console.example.com' }, null],
    [{ host: 'attacker.example:3333' }, 'host_not_allowed'],
    [{ host: '127.0.0.2:3333' }, 'host_not_allowed'],
    [{}, 'host_not_allowed'],
    [{ host: 'localhost:3333@evil.example' }, 'host_not_allowed'],
    [{ host: '127.0.0.1:3333', origin: 'https://evil.example' }, 'origin_not_allowed'],
    [{ host: '127.0.0.1:3333', origin: 'null' }, 'origin_not_allowed'],
    [{ host: '127.0.0.1:3333', origin: 'http://127.0.0.1:8080' }, 'origin_not_allowed'],
    [{ host: '127.0.0.1:3333', origin: 'http://localhost:3333' }, 'origin_not_allowed'],
    [{ host: 'hooks.example.com', origin: 'https://hooks.example.com' }, 'origin_not_allowed'],
    [{ host: '127.0.0.1:3333', origin: 'https://console.example.com.evil.example' }, 'origin_not_allowed'],
  ])('%j -> %s', (headers, expected) => {
    expect(checkHeaders(headers, rules)?.reason ?? null).toBe(expected);
  });

  it('answers to a non-loopback bind address, and to nothing else when bound to all interfaces', () => {
    expect(checkHeaders({ host: '10.1.2.3:3333' }, originRules({ bindHost: '10.1.2.3', allowedOrigins: [], publicUrls: [] }))).toBeNull();
    expect(checkHeaders({ host: '10.1.2.3:3333' }, originRules({ bindHost: '0.0.0.0', allowedOrigins: [], publicUrls: [] }))?.reason).toBe('host_not_allowed');
  });
});

describe('bearer tokens', () => {
  it.each([
    [undefined, 'none'],
    ['', 'none'],
    ['Basic dXNlcjpwYXNz', 'malformed'],
    ['Bearer', 'malformed'],
    ['Bearer short', 'malformed'],
    ['Bearer mim_has spaces_in_the_middle', 'malformed'],
    ['Bearer mim_abcdefghijklmnopqrstuvwxyz', 'token'],
    ['bearer   mim_abcdefghijklmnopqrstuvwxyz  ', 'token'],
  ])('%j is %s', (authorization, kind) => {
    expect(presentedToken(authorization === undefined ? {} : { authorization }).kind).toBe(kind);
  });

  it('finds the agent whose token_sha256 matches, and nobody for another token', () => {
    const agent = (name: string, token: string | null): AgentPolicy => ({
      agent: name, description: null, tokenSha256: token === null ? null : sha256Hex(token), modes: ['test'], ratePerMinute: null, confirmInClient: null, tools: new Map(), file: `${name}.yaml`, sha256: '0'.repeat(64),
    });
    const policies: PolicySet = { directory: '/p', agents: new Map([['a', agent('a', 'token-of-a-0123456789')], ['b', agent('b', 'token-of-b-0123456789')], ['c', agent('c', null)]]) };
    expect(agentForToken(policies, 'token-of-b-0123456789')?.agent).toBe('b');
    expect(agentForToken(policies, 'token-of-c-0123456789')).toBeNull();
  });
});
