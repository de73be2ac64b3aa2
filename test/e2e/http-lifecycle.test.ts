/**
 * The HTTP server's life: it refuses to start with a webhook URL Mollie could never reach, closes idle sessions, and on
 * SIGTERM stops taking requests but lets the calls already in flight finish, records their outcomes and exits 0.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { initializeBody, MCP_HEADERS, newToken, rawRequest, spawnHttpServer, type HttpServerHandle } from '../support/http-server.js';
import { CLI, createWorkspace, mollieDoubleEnv, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest, storeArgs } from '../support/store-under-test.js';

/** Sessions, their caps and their expiry are of the 2025-11-25 protocol; 2026-07-28 has none. */
const SESSIONS = { protocol: 'legacy' } as const;
const CLERK = newToken();
const OTHER = newToken();
const POLICY = `agent: clerk
token_sha256: ${CLERK.sha256}
rate_limit: { per_minute: 1000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100.00", per_day: "1000.00" }
  get_payment_status: {}
`;

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function workspaceFor(): Workspace {
  const workspace = createWorkspace({ clerk: POLICY, other: `agent: other\ntoken_sha256: ${OTHER.sha256}\ntools:\n  get_payment_status: {}\n` });
  cleanup.push(async () => workspace.remove());
  return workspace;
}

async function serverFor(workspace: Workspace, env: Record<string, string> = {}): Promise<HttpServerHandle> {
  const server = await spawnHttpServer({ workspace, env });
  cleanup.push(() => server.stop('SIGKILL'));
  return server;
}

describe('serve --transport http', () => {
  it('refuses to start with a webhook URL Mollie cannot reach, saying why', async () => {
    const workspace = workspaceFor();
    const failed = spawnHttpServer({ workspace, env: { MOLLIE_MCP_WEBHOOK_URL: 'https://127.0.0.1/webhooks/mollie' } });
    await expect(failed).rejects.toThrow(/exited with 1[\s\S]*MOLLIE_MCP_WEBHOOK_URL must be reachable from Mollie/);
    const plain = spawnHttpServer({ workspace, env: { MOLLIE_MCP_WEBHOOK_URL: 'http://hooks.example.com/webhooks/mollie' } });
    await expect(plain).rejects.toThrow(/MOLLIE_MCP_WEBHOOK_URL must use https/);
  });

  it('refuses a port that is taken, naming it', async () => {
    const workspace = workspaceFor();
    const first = await serverFor(workspace);
    const port = new URL(first.url).port;
    await expect(spawnHttpServer({ workspace, args: ['--port', port] })).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
  });

  it('caps the sessions one agent may hold, so it cannot lock every other agent out', async () => {
    const workspace = workspaceFor();
    const server = await serverFor(workspace, { MOLLIE_MCP_SESSIONS_PER_AGENT: '3' });
    const opened = await Promise.all([1, 2, 3].map(() => server.connect(CLERK.token, SESSIONS)));
    cleanup.push(async () => Promise.all(opened.map((client) => client.close().catch(() => undefined))));
    const fourth = await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${CLERK.token}` }, body: initializeBody() });
    expect(fourth.status).toBe(429);
    expect(fourth.headers['retry-after']).toBe('30');
    expect(JSON.parse(fourth.body).error.message).toMatch(/already has 3 open sessions, the most one agent may have \(MOLLIE_MCP_SESSIONS_PER_AGENT\)/);
    // Everyone else is unaffected, and the agent's own sessions keep working.
    const other = await server.connect(OTHER.token, SESSIONS);
    cleanup.push(() => other.close().catch(() => undefined));
    expect((await other.client.listTools()).tools.map((tool) => tool.name)).toEqual(['get_payment_status']);
    expect((await opened[0]!.client.listTools()).tools).toHaveLength(2);
    await opened[2]!.transport.terminateSession();
    await opened[2]!.close();
    const again = await server.connect(CLERK.token, SESSIONS);
    cleanup.push(() => again.close().catch(() => undefined));
  });

  it('closes an idle session; the client is told to start a new one', async () => {
    const workspace = workspaceFor();
    const server = await serverFor(workspace, { MOLLIE_MCP_SESSION_IDLE_SECONDS: '1' });
    const client = await server.connect(CLERK.token, SESSIONS);
    cleanup.push(() => client.close().catch(() => undefined));
    expect((await client.client.listTools()).tools).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await expect(client.client.listTools()).rejects.toThrow(/Session not found/);
    const fresh = await server.connect(CLERK.token, SESSIONS);
    cleanup.push(() => fresh.close().catch(() => undefined));
    expect((await fresh.client.listTools()).tools).toHaveLength(2);
  });
});

describe('SIGTERM with calls in flight', () => {
  let double: MollieApiDouble;

  it('lets every call in flight finish and record its outcome, refuses new work, and exits 0', async () => {
    double = await startMollieApiDouble();
    cleanup.push(() => double.close());
    const workspace = workspaceFor();
    const server = await serverFor(workspace, mollieDoubleEnv(double.url));
    const client = await server.connect(CLERK.token, SESSIONS);
    // Mollie takes 1.5 s to answer each of these four pay links.
    double.inject({ fault: { kind: 'delay', ms: 1500 }, method: 'POST', path: /\/v2\/payment-links$/, times: 4 });
    const calls = [1, 2, 3, 4].map((n) => client.call('create_invoice_payment', { invoice_id: `TERM-${n}`, amount: '10.00', currency: 'EUR' }));
    while (double.requests.filter((request) => request.method === 'POST').length < 4) await new Promise((resolve) => setTimeout(resolve, 20));

    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const late = await rawRequest(`${server.url}/healthz`, {}).catch((error: NodeJS.ErrnoException) => ({ status: error.code ?? 'error' }));
    expect([503, 'ECONNREFUSED', 'ECONNRESET']).toContain(late.status);

    const results = await Promise.all(calls);
    expect(results.map((result) => result.isError)).toEqual([false, false, false, false]);
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/"in_flight":4[^\n]*Stopping/);
    expect(server.stderr()).toContain('"msg":"Stopped"');

    const db = openStoreForTest(workspace);
    const outcomes = db.prepare("SELECT outcome FROM audit_log WHERE kind = 'outcome' AND invoice_id LIKE 'TERM-%'").all() as { outcome: string }[];
    db.close();
    expect(outcomes.map((row) => row.outcome)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' })).toMatch(/intact: 8 rows/);
    await client.close().catch(() => undefined);
  });
});

describe('floods of refused requests', () => {
  it('are bounded per source: past 20 a source gets 429 with Retry-After and one summary row, never a row each', async () => {
    const workspace = workspaceFor();
    const server = await serverFor(workspace, { MOLLIE_MCP_WEBHOOK_URL: 'https://hooks.example.com/webhooks/mollie' });
    const answers = [];
    for (let i = 0; i < 50; i += 1) answers.push(await rawRequest(`${server.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: initializeBody() }));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 401)).toHaveLength(20);
    expect(statuses.slice(20).every((status) => status === 429)).toBe(true);
    expect(Number(answers[49]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(answers[49]!.body).error).toMatch(/Too many refused requests from this address; try again in \d+ s\. This server needs "Authorization: Bearer <token>"/);
    expect(await server.stop()).toBe(0);
    const db = openStoreForTest(workspace);
    const refusals = db.prepare("SELECT count(*) AS n FROM audit_log WHERE reason = 'missing_token'").get() as { n: number };
    const summary = db.prepare("SELECT reason_message, arguments FROM audit_log WHERE reason = 'refusals_summarised'").all() as { reason_message: string; arguments: string }[];
    db.close();
    expect(refusals.n).toBe(20);
    expect(summary).toHaveLength(1);
    expect(summary[0]!.reason_message).toMatch(/^30 refused request\(s\) from 127\.0\.0\.1 between .* were answered 429 without a row each \(missing_token x30\)/);
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' })).toMatch(/intact/);
  });

  it('webhooks are not served at all without MOLLIE_MCP_WEBHOOK_URL', async () => {
    const workspace = workspaceFor();
    const server = await serverFor(workspace);
    const answer = await rawRequest(`${server.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'id=tr_doesNotExist1' });
    expect(answer.status).toBe(404);
    const db = openStoreForTest(workspace);
    expect((db.prepare("SELECT count(*) AS n FROM audit_log WHERE agent = 'mollie-webhook'").get() as { n: number }).n).toBe(0);
    db.close();
  });
});

describe('junk webhooks behind a proxy (hostile pass, 0.5.0)', () => {
  it("do not crowd out Mollie's webhook about a payment this server made, though every sender shares one address", async () => {
    const workspace = workspaceFor();
    const server = await serverFor(workspace, { MOLLIE_MCP_WEBHOOK_URL: 'https://hooks.example.com/webhooks/mollie' });
    const client = await server.connect(CLERK.token, SESSIONS);
    cleanup.push(() => client.close().catch(() => undefined));
    const made = await client.call('create_invoice_payment', { invoice_id: 'WH-1', amount: '25.00', currency: 'EUR', kind: 'checkout' });
    const paymentId = String(made.structuredContent.payment_id);
    // What nginx forwards: Host hooks.example.com, from 127.0.0.1. The junk: 330 posts at once.
    const post = (id: string) =>
      rawRequest(`${server.url}/webhooks/mollie`, { method: 'POST', headers: { Host: 'hooks.example.com', 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${id}` });
    const junk = await Promise.all(Array.from({ length: 330 }, (_, i) => post(`tr_junk${i}`)));
    expect(junk.filter((answer) => answer.status === 429).length).toBeGreaterThan(0);
    const genuine = await post(paymentId);
    expect(genuine.status).toBe(200);
    const db = openStoreForTest(workspace);
    const rows = db.prepare("SELECT count(*) AS n FROM audit_log WHERE agent = 'mollie-webhook' AND payment_id = ?").get(paymentId) as { n: number };
    db.close();
    expect(rows.n).toBe(2);
    // The payment's own budget: a flood naming it is limited too.
    const repeated = [];
    for (let i = 0; i < 12; i += 1) repeated.push((await post(paymentId)).status);
    expect(repeated.filter((status) => status === 429).length).toBeGreaterThan(0);
  });
});

describe('another process holding the database write lock', () => {
  it('does not freeze the server: health checks are answered while calls wait for the lock, and the calls then complete (finding 9)', async () => {
    const workspace = workspaceFor();
    const server = await serverFor(workspace);
    const client = await server.connect(CLERK.token, SESSIONS);
    cleanup.push(() => client.close().catch(() => undefined));

    // A second process (an operator's sqlite3 shell, another replica mid-transaction) takes the write lock and keeps it.
    const holder = new Database(workspace.db);
    holder.exec('BEGIN IMMEDIATE');
    let holding = true;
    const release = (): void => {
      if (!holding) return;
      holding = false;
      holder.exec('COMMIT');
      holder.close();
    };
    cleanup.push(async () => release());

    const call = client.call('create_invoice_payment', { invoice_id: 'LOCKED-1', amount: '10.00', currency: 'EUR' });
    const refused = rawRequest(`${server.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: initializeBody() });
    // Both are waiting to write by now; a server blocked in SQLite's busy wait would answer nothing until the release.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let answeredWhileHeld = false;
    const health = rawRequest(`${server.url}/healthz`, {}).then((answer) => {
      answeredWhileHeld = holding;
      return answer;
    });
    await Promise.race([health, new Promise((resolve) => setTimeout(resolve, 8000))]);
    release();
    expect((await health).status).toBe(200);
    expect(answeredWhileHeld).toBe(true);

    // Nothing was lost: the call completed and both it and the refused request have their rows.
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect((await refused).status).toBe(401);
    const db = openStoreForTest(workspace);
    const reasons = db.prepare("SELECT reason FROM audit_log WHERE kind = 'decision' ORDER BY seq").all() as { reason: string }[];
    db.close();
    expect(reasons.map((row) => row.reason).sort()).toEqual(['allowed', 'missing_token'].sort());
  }, 60_000);
});
