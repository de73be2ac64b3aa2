/**
 * Streamable HTTP end to end: the built server spawned with `serve --transport http`, SDK Streamable HTTP clients with
 * bearer tokens (as Claude Code or VS Code send them), Mollie played by the https double, a real SQLite file. What a
 * client or attacker could do to the endpoint, and what the audit log says about it afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secret } from '../support/leak-watch.js';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { initializeBody, MCP_HEADERS, newToken, rawRequest, spawnHttpServer, type HttpClientHandle, type HttpServerHandle } from '../support/http-server.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type Workspace } from '../support/stdio-server.js';
import { PROTOCOL } from '../support/protocol-under-test.js';
import { openStoreForTest, storeArgs } from '../support/store-under-test.js';

const BILLING = newToken();
const DESK = newToken();
const AUDITOR = newToken();
/** In a policy file that is not loaded: a token that looks right but names nobody. */
const STRANGER = newToken();
const LOADER_A = newToken();
const LOADER_B = newToken();
const WEBHOOK_URL = 'https://hooks.example.com/webhooks/mollie';
const ALLOWED_ORIGIN = 'https://console.example.com';

const POLICIES = {
  billing: `agent: billing
token_sha256: ${BILLING.sha256}
rate_limit: { per_minute: 1000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100.00", per_day: "1000.00", count_per_day: 500 }
  get_payment_status: {}
  list_logs: { scope: own }
`,
  desk: `agent: desk
token_sha256: ${DESK.sha256}
rate_limit: { per_minute: 1000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100.00", per_day: "1000.00", count_per_day: 500 }
  refund:
    limits:
      EUR: { per_call: "50.00", per_day: "60.00" }
`,
  'loader-a': `agent: loader-a
token_sha256: ${LOADER_A.sha256}
rate_limit: { per_minute: 1000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "10.00", per_day: "300.00" }
`,
  'loader-b': `agent: loader-b
token_sha256: ${LOADER_B.sha256}
rate_limit: { per_minute: 1000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "10.00", per_day: "200.00" }
`,
  auditor: `agent: auditor
token_sha256: ${AUDITOR.sha256}
tools:
  list_logs: { scope: all }
`,
};

let double: MollieApiDouble;
let workspace: Workspace;
let server: HttpServerHandle;
const clients: HttpClientHandle[] = [];

async function connect(token: string, clientName?: string, protocol?: 'legacy' | 'modern'): Promise<HttpClientHandle> {
  const client = await server.connect(token, { ...(clientName ? { clientName } : {}), ...(protocol ? { protocol } : {}) });
  clients.push(client);
  return client;
}

function auditRows(where: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare(`SELECT * FROM audit_log WHERE ${where} ORDER BY seq`).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

function wholeLog(): string {
  const db = openStoreForTest(workspace);
  try {
    return JSON.stringify(db.prepare('SELECT * FROM audit_log').all());
  } finally {
    db.close();
  }
}

function errorOf(result: { structuredContent: Record<string, unknown> }): { code: string; reason?: string; message: string } {
  return result.structuredContent.error as { code: string; reason?: string; message: string };
}

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace(POLICIES);
  server = await spawnHttpServer({ workspace, env: { ...mollieDoubleEnv(double.url), MOLLIE_MCP_WEBHOOK_URL: WEBHOOK_URL, MOLLIE_MCP_ALLOWED_ORIGINS: ALLOWED_ORIGIN } });
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  await server?.stop();
  await double?.close();
  workspace?.remove();
});

describe('one HTTP server, many agents', () => {
  it('answers /healthz without a token', async () => {
    const health = await rawRequest(`${server.url}/healthz`, {});
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
  });

  it('shows each agent only its own tools, exactly as over stdio', async () => {
    const billing = await connect(BILLING.token);
    const desk = await connect(DESK.token);
    const auditor = await connect(AUDITOR.token);
    const names = async (client: HttpClientHandle) => (await client.client.listTools()).tools.map((tool) => tool.name);
    expect(await names(billing)).toEqual(['create_invoice_payment', 'get_payment_status', 'list_logs']);
    expect(await names(desk)).toEqual(['create_invoice_payment', 'refund']);
    expect(await names(auditor)).toEqual(['list_logs']);

    const refused = await billing.call('refund', { payment_id: 'tr_abcdefghij' });
    expect(refused.isError).toBe(true);
    expect(errorOf(refused)).toMatchObject({ code: 'policy_denied', reason: 'tool_not_allowed' });
    const [decision] = auditRows("call_id = ? AND kind = 'decision'", refused.structuredContent.audit_id);
    expect(decision).toMatchObject({ agent: 'billing', transport: 'http', tool: 'refund', decision: 'denied', client_name: 'e2e-http-client' });

    // list_logs scope is the policy's, as over stdio: billing reads only its own entries, the auditor everyone's.
    expect(errorOf(await billing.call('list_logs', { agent: 'desk' }))).toMatchObject({ code: 'policy_denied', reason: 'scope_own' });
    const own = (await billing.call('list_logs', {})).structuredContent.entries as { agent: string }[];
    expect(new Set(own.map((entry) => entry.agent))).toEqual(new Set(['billing']));
    const all = (await auditor.call('list_logs', { decision: 'denied' })).structuredContent.entries as { agent: string | null }[];
    expect(all.map((entry) => entry.agent)).toContain('billing');
  });

  it('refuses a request without a token with 401, WWW-Authenticate and an audit row', async () => {
    const answer = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: initializeBody() });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="mollie-invoice-mcp"');
    const error = JSON.parse(answer.body).error;
    expect(error.data.reason).toBe('missing_token');
    const rows = auditRows('call_id = ?', error.data.audit_id);
    expect(rows.map((row) => [row.kind, row.decision ?? row.outcome, row.reason ?? row.error_code])).toEqual([
      ['decision', 'denied', 'missing_token'],
      ['outcome', 'error', 'policy_denied'],
    ]);
    expect(rows[0]).toMatchObject({ agent: null, transport: 'http' });
  });

  it('never records a token sent in the URL: the request line keeps the path only', async () => {
    const leaked = secret(`mim_inTheUrl${'x'.repeat(30)}`);
    const answer = await rawRequest(`${server.url}/mcp?access_token=${leaked}&x=1`, { method: 'POST', headers: MCP_HEADERS, body: initializeBody() });
    expect(answer.status).toBe(401);
    const rows = auditRows('call_id = ?', JSON.parse(answer.body).error.data.audit_id);
    expect(JSON.parse(String(rows[0]!.arguments)).request).toBe('POST /mcp');
    expect(wholeLog()).not.toContain(leaked);
    expect(server.stderr()).not.toContain(leaked);
  });

  it('refuses an unknown token with 401 invalid_token and never records the token', async () => {
    const answer = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${STRANGER.token}` }, body: initializeBody() });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="mollie-invoice-mcp", error="invalid_token"');
    const error = JSON.parse(answer.body).error;
    expect(error.data.reason).toBe('unknown_token');
    expect(auditRows('call_id = ?', error.data.audit_id)).toHaveLength(2);
    expect(answer.body).not.toContain(STRANGER.token);
    expect(wholeLog()).not.toContain(STRANGER.token);
    expect(server.stderr()).not.toContain(STRANGER.token);
  });

  it('the SDK client with a wrong token cannot connect at all', async () => {
    // A 2026-07-28 client's first request is its server/discover probe; the SDK reports the 401 without our message.
    await expect(server.connect(STRANGER.token)).rejects.toThrow(PROTOCOL === 'modern' ? /requires authorization \(HTTP 401\)/ : /matches no agent's token_sha256/);
  });

  it('refuses a foreign Origin with 403, and accepts its own localhost origin', async () => {
    const foreign = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${BILLING.token}`, Origin: 'https://evil.example' },
      body: initializeBody(),
    });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body).error.data.reason).toBe('origin_not_allowed');
    const rebinding = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${BILLING.token}`, Origin: 'http://localhost:1' },
      body: initializeBody(),
    });
    expect(rebinding.status).toBe(403);
    const own = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${BILLING.token}`, Origin: server.url },
      body: initializeBody(),
    });
    expect(own.status).toBe(200);
    expect(own.headers['mcp-session-id']).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('lets an allowed origin through the browser preflight, and no other', async () => {
    const preflight = (origin: string) =>
      rawRequest(`${server.url}/mcp`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' } });
    const allowed = await preflight(ALLOWED_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(String(allowed.headers['access-control-allow-headers'])).toContain('Authorization');
    const foreign = await preflight('https://evil.example');
    expect(foreign.status).toBe(403);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    const call = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, Origin: ALLOWED_ORIGIN, Authorization: `Bearer ${BILLING.token}` }, body: initializeBody() });
    expect(call.status).toBe(200);
    expect(call.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(String(call.headers['access-control-expose-headers'])).toContain('Mcp-Session-Id');
  });

  it('refuses a foreign Host with 403 (DNS rebinding), before looking at the token', async () => {
    const port = new URL(server.url).port;
    const answer = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Host: `attacker.example:${port}`, Authorization: `Bearer ${BILLING.token}` },
      body: initializeBody(),
    });
    expect(answer.status).toBe(403);
    const error = JSON.parse(answer.body).error;
    expect(error.data.reason).toBe('host_not_allowed');
    expect(auditRows('call_id = ?', error.data.audit_id)[0]).toMatchObject({ decision: 'denied', reason: 'host_not_allowed', agent: null });
  });

  it("refuses agent B's token on agent A's session, and checks the token on every request", async () => {
    const billing = await connect(BILLING.token, undefined, 'legacy');
    const sessionId = billing.transport.sessionId!;
    expect(sessionId).toBeTruthy();
    const listTools = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
    const sessionHeaders = { ...MCP_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' };

    const hijack = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: { ...sessionHeaders, Authorization: `Bearer ${DESK.token}` }, body: listTools });
    expect(hijack.status).toBe(403);
    const error = JSON.parse(hijack.body).error;
    expect(error.data.reason).toBe('session_agent_mismatch');
    expect(auditRows("call_id = ? AND kind = 'decision'", error.data.audit_id)[0]).toMatchObject({ agent: 'desk', reason: 'session_agent_mismatch' });

    const noToken = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: sessionHeaders, body: listTools });
    expect(noToken.status).toBe(401);

    // The owner's session is untouched by both attempts.
    expect((await billing.client.listTools()).tools).toHaveLength(3);
  });

  it('answers a session id it never issued with 404, so the client starts over', async () => {
    const answer = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${BILLING.token}`, 'mcp-session-id': 'made-up-session-id' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body).error.code).toBe(-32001);
  });

  it('checks the session before reading the body: a stale session with a broken body still gets 404, and another agent\'s session 403', async () => {
    const stale = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${BILLING.token}`, 'mcp-session-id': 'made-up-session-id' },
      body: '{"jsonrpc": "2.0", "method": ',
    });
    expect(stale.status).toBe(404);
    const billing = await connect(BILLING.token, undefined, 'legacy');
    const hijack = await rawRequest(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${DESK.token}`, 'mcp-session-id': billing.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' },
      body: '{"jsonrpc": "2.0", "method": ',
    });
    expect(hijack.status).toBe(403);
    expect(JSON.parse(hijack.body).error.data.reason).toBe('session_agent_mismatch');
  });

  it('answers malformed JSON with a JSON-RPC parse error and an oversized body with 413, and keeps serving', async () => {
    const auth = { ...MCP_HEADERS, Authorization: `Bearer ${BILLING.token}` };
    const garbage = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: auth, body: '{"jsonrpc": "2.0", "method": ' });
    expect(garbage.status).toBe(400);
    expect(JSON.parse(garbage.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 }, id: null });
    const huge = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: auth, body: Buffer.alloc(2 * 1024 * 1024, 'a') }).catch((error: Error) => ({ status: 0, error }));
    // The server answers 413 as soon as it sees the Content-Length; a client still sending may see the reset instead.
    expect([413, 0]).toContain(huge.status);
    const notInitialize = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: auth, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
    expect(notInitialize.status).toBe(400);
    expect((await rawRequest(`${server.url}/healthz`, {})).status).toBe(200);
  });

  it('shares budgets with stdio processes on the same database', async () => {
    const desk = await connect(DESK.token);
    const stdioDesk = await spawnServer({ agent: 'desk', token: DESK.token, workspace, env: mollieDoubleEnv(double.url) });
    try {
      const payment = await double.simulator.createPayment({ amount: { value: '100.00', currency: 'EUR' }, description: 'Invoice SHARED-1', redirectUrl: 'https://shop.example.com/thanks' }, { idempotencyKey: 'shared-budget' });
      double.simulator.simulate(payment.id, 'paid');
      const overStdio = await stdioDesk.call('refund', { payment_id: payment.id, amount: '40.00' });
      expect(overStdio.isError).toBe(false);
      const overHttp = await desk.call('refund', { payment_id: payment.id, amount: '30.00' });
      expect(errorOf(overHttp)).toMatchObject({ code: 'policy_denied', reason: 'per_day_exceeded' });
      expect(errorOf(overHttp).message).toContain('40.00 EUR already used, 20.00 EUR left');
      const fits = await desk.call('refund', { payment_id: payment.id, amount: '20.00' });
      expect(fits.isError).toBe(false);
    } finally {
      await stdioDesk.close();
    }
  });
});

describe('Mollie webhooks', () => {
  it('a webhook for a paid checkout updates the status and the log, fetching the payment from Mollie', async () => {
    const billing = await connect(BILLING.token);
    const auditor = await connect(AUDITOR.token);
    const created = await billing.call('create_invoice_payment', { invoice_id: 'HOOK-1', amount: '25.00', currency: 'EUR', kind: 'checkout' });
    expect(created.isError).toBe(false);
    const paymentId = String(created.structuredContent.payment_id);
    const creation = double.requests.find((request) => request.method === 'POST' && (request.body as { metadata?: { invoice_id?: string } }).metadata?.invoice_id === 'HOOK-1');
    expect(creation?.body).toMatchObject({ webhookUrl: WEBHOOK_URL });

    double.simulator.simulate(paymentId, 'paid');
    const before = double.requests.length;
    // Through a public tunnel or proxy the Host is the webhook URL's; the body says only the id.
    const hook = await rawRequest(`${server.url}/webhooks/mollie`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Host: 'hooks.example.com' },
      body: `id=${paymentId}`,
    });
    expect(hook.status).toBe(200);
    expect(hook.body).toBe('');
    expect(double.requests.slice(before).map((request) => `${request.method} ${request.path}`)).toEqual([`GET /v2/payments/${paymentId}`]);

    const rows = auditRows("agent = 'mollie-webhook' AND payment_id = ?", paymentId);
    expect(rows.map((row) => [row.kind, row.decision ?? row.outcome])).toEqual([['decision', 'allowed'], ['outcome', 'ok']]);
    expect(rows[1]).toMatchObject({ invoice_id: 'HOOK-1', action: `payment ${paymentId} of invoice HOOK-1 (25.00 EUR) is now paid (was open)` });

    const log = await auditor.call('list_logs', { payment_id: paymentId });
    const entries = log.structuredContent.entries as { agent: string; summary: string }[];
    expect(entries.map((entry) => entry.agent)).toEqual(['mollie-webhook', 'billing']);
    expect(entries[0]!.summary).toContain('is now paid (was open)');

    const status = await billing.call('get_payment_status', { invoice_id: 'HOOK-1' });
    expect(status.structuredContent).toMatchObject({ status: 'paid' });
  });

  it('answers an unknown or malformed id exactly like a known one, and logs it', async () => {
    const post = (body: string) => rawRequest(`${server.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
    const unknown = await post('id=tr_doesNotExist99');
    expect({ status: unknown.status, body: unknown.body }).toEqual({ status: 200, body: '' });
    expect(auditRows("agent = 'mollie-webhook' AND payment_id = 'tr_doesNotExist99'").map((row) => row.error_code ?? row.decision)).toEqual(['allowed', 'not_found']);
    const malformed = await post('id=../../etc/passwd');
    expect({ status: malformed.status, body: malformed.body }).toEqual({ status: 200, body: '' });
    expect(auditRows("agent = 'mollie-webhook' AND reason = 'invalid_input'")).toHaveLength(1);
  });

  it('a payment Mollie knows but this server did not make changes nothing', async () => {
    const foreign = await double.simulator.createPayment({ amount: { value: '5.00', currency: 'EUR' }, description: 'made elsewhere', redirectUrl: 'https://shop.example.com/thanks' }, { idempotencyKey: 'foreign-payment' });
    const answer = await rawRequest(`${server.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${foreign.id}` });
    expect(answer.status).toBe(200);
    const [, outcome] = auditRows("agent = 'mollie-webhook' AND payment_id = ?", foreign.id);
    expect(outcome).toMatchObject({ outcome: 'error', error_code: 'not_found' });
  });
});

describe('under load', () => {
  it('50 concurrent calls from five clients of two agents: no error, and the daily caps filled to the cent', async () => {
    const owners = [LOADER_A, LOADER_A, LOADER_A, LOADER_B, LOADER_B];
    const five = await Promise.all(owners.map((owner, index) => connect(owner.token, `load-${index}`)));
    const postsBefore = double.requests.filter((request) => request.method === 'POST').length;
    const started = performance.now();
    const results = await Promise.all(
      five.flatMap((client, c) => Array.from({ length: 10 }, (_, i) => client.call('create_invoice_payment', { invoice_id: `LOAD-${c}-${i}`, amount: '10.00', currency: 'EUR' }))),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`50 concurrent create_invoice_payment calls over HTTP (5 clients, 2 agents): ${seconds.toFixed(2)} s, ${(50 / seconds).toFixed(0)} calls/s`);
    expect(results.filter((result) => result.isError).map((result) => errorOf(result))).toEqual([]);
    expect(new Set(results.map((result) => result.structuredContent.payment_link_id)).size).toBe(50);
    expect(double.requests.filter((request) => request.method === 'POST').length - postsBefore).toBe(50);

    // Exactly 300.00 and 200.00 used: one more cent is over the cap, for each agent.
    const overA = await five[0]!.call('create_invoice_payment', { invoice_id: 'LOAD-OVER-A', amount: '0.01', currency: 'EUR' });
    expect(errorOf(overA)).toMatchObject({ code: 'policy_denied', reason: 'per_day_exceeded' });
    expect(errorOf(overA).message).toContain('300.00 EUR already used, 0.00 EUR left');
    const overB = await five[4]!.call('create_invoice_payment', { invoice_id: 'LOAD-OVER-B', amount: '0.01', currency: 'EUR' });
    expect(errorOf(overB).message).toContain('200.00 EUR already used, 0.00 EUR left');
  });
});

describe('the audit log after all of it', () => {
  it('verifies', async () => {
    const { execFileSync } = await import('node:child_process');
    const { CLI } = await import('../support/stdio-server.js');
    const out = execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' });
    expect(out).toMatch(/intact/);
  });
});
