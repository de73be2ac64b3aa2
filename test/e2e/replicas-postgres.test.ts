/**
 * Several replicas on one PostgreSQL store, as the README's "Running several replicas" sets them up: built server
 * processes with `serve --transport http --stateless` on the shared database, a round-robin SDK client in front,
 * Mollie played by the https double.
 *
 * - Three replicas started at the same moment on an empty database all start (the schema is made once).
 * - 60 concurrent refunds against a per-day cap stop exactly at the cap; Mollie sees exactly that many; one chain.
 * - An approval asked on one replica is approved in the console of another and used on a third.
 * - Mollie's webhook may land on any replica.
 * - A replica killed with SIGKILL while refunds are in flight is reconciled by one started after it (once the calls
 *   are 30 s old, the Mollie deadline and a margin), each with what Mollie says.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { negotiation } from '../support/protocol-under-test.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { produced } from '../support/leak-watch.js';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { newToken, spawnHttpServer, type HttpServerHandle } from '../support/http-server.js';
import { freshDatabase, type TestDatabase } from '../support/postgres.js';
import { SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { CLI, createWorkspace, mollieDoubleEnv, type Workspace } from '../support/stdio-server.js';
import { queryStore, until } from '../support/waiting.js';

const exec = promisify(execFile);
const DESK = newToken();
const ALICE = newToken();

const POLICIES = {
  desk: `agent: desk
token_sha256: ${DESK.sha256}
rate_limit: { per_minute: 10000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "1000.00" }
  refund:
    limits:
      EUR: { per_call: "400.00", per_day: "1000.00", confirm_above: "200.00" }
      USD: { per_call: "10.00", per_day: "150.00" }
  get_payment_status: {}
  list_logs: { scope: all }
`,
};
const PEOPLE_FILE = `people:
  - name: alice
    roles: [approver, auditor]
    token_sha256: ${ALICE.sha256}
`;

let double: MollieApiDouble;
let workspace: Workspace;
let database: TestDatabase;
let replicas: HttpServerHandle[] = [];

type Result = CallToolResult & { structuredContent: Record<string, unknown> };

/** An SDK client that sends each request to the next replica in `order` (indexes into replicas). */
async function clientOver(order: number[], token = DESK.token): Promise<{ call(name: string, args?: Record<string, unknown>): Promise<Result>; close(): Promise<void> }> {
  let next = 0;
  const transport = new StreamableHTTPClientTransport(new URL(`${replicas[order[0]!]!.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: async (input, init) => {
      const replica = replicas[order[next++ % order.length]!]!;
      return fetch(`${replica.url}${new URL(String(input instanceof Request ? input.url : input)).pathname}`, init);
    },
  });
  const client = new Client({ name: 'round-robin', version: '1.0.0' }, negotiation());
  await client.connect(transport);
  return {
    call: async (name, args = {}) => {
      const result = (await client.callTool({ name, arguments: args })) as Result;
      produced(`${name} result (replicas)`, JSON.stringify(result));
      return result;
    },
    close: () => client.close(),
  };
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', MOLLIE_MCP_DATABASE_URL: database.serverUrl } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function paidPayment(invoiceId: string, value = '5000.00', currency = 'EUR'): Promise<string> {
  const payment = await double.simulator.createPayment(
    { amount: { value, currency }, description: `Invoice ${invoiceId}`, redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: invoiceId } },
    { idempotencyKey: `replicas-${invoiceId}` },
  );
  double.simulator.simulate(payment.id, 'paid');
  return payment.id;
}

function replicaEnv(): Record<string, string> {
  return {
    ...mollieDoubleEnv(double.url),
    MOLLIE_MCP_DB: '',
    MOLLIE_MCP_DATABASE_URL: database.serverUrl,
    MOLLIE_MCP_PEOPLE: join(workspace.dir, 'people.yaml'),
    MOLLIE_MCP_WEBHOOK_URL: 'https://mcp.example.com/webhooks/mollie',
  };
}

function startReplica(): Promise<HttpServerHandle> {
  return spawnHttpServer({ workspace, env: replicaEnv(), args: ['--stateless'] });
}

const store = () => ({ db: '', databaseUrl: database.ownerUrl });

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace(POLICIES);
  writeFileSync(join(workspace.dir, 'people.yaml'), PEOPLE_FILE);
  // The README's setup: an owner migrates and grants; the servers connect as a role that owns nothing.
  database = await freshDatabase({ migrated: false });
  const migrated = await exec(process.execPath, [CLI, 'db', 'migrate', '--grant-to', database.serverRole], { env: { PATH: process.env.PATH ?? '', MOLLIE_MCP_DATABASE_URL: database.ownerUrl } });
  expect(migrated.stdout).toContain('migrated from version 0');
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.stop()));
  await double.close();
  workspace.remove();
});

describe('replicas starting at once on an empty database', () => {
  it('both start, and the schema is made once', async () => {
    // The one-role setup: the server's role owns the database, so the first replica to start makes the schema.
    const empty = await freshDatabase({ migrated: false });
    const env = { ...mollieDoubleEnv(double.url), MOLLIE_MCP_DB: '', MOLLIE_MCP_DATABASE_URL: empty.ownerUrl };
    const pair = await Promise.all([0, 1].map(() => spawnHttpServer({ workspace, env, args: ['--stateless'] })));
    try {
      for (const replica of pair) expect(replica.stderr()).toContain('"msg":"Listening"');
      const versions = await empty.admin<{ version: number }>('SELECT version FROM schema_version');
      expect(versions.rows).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })));
      expect((await empty.admin('SELECT * FROM audit_chain_head')).rowCount).toBe(1);
    } finally {
      await Promise.all(pair.map((replica) => replica.stop()));
    }
  }, 60_000);
});

describe('three stateless replicas on one PostgreSQL store', () => {
  it('start together', async () => {
    replicas = await Promise.all([startReplica(), startReplica(), startReplica()]);
    for (const replica of replicas) expect(replica.stderr()).toContain('"msg":"Listening"');
  }, 60_000);

  it('stop 60 concurrent refunds exactly at the daily cap; Mollie sees exactly those; one chain verifies', async () => {
    const payment = await paidPayment('CAP-1', '1000.00', 'USD');
    const desk = await clientOver([0, 1, 2]);
    // 60 refunds of 7.00 USD against 150.00 a day: 21 fit (147.00), every other one is refused before Mollie.
    const results = await Promise.all(Array.from({ length: 60 }, () => desk.call('refund', { payment_id: payment, amount: '7.00', allow_repeat: true })));
    await desk.close();
    const allowed = results.filter((result) => !result.isError);
    const refused = results.filter((result) => result.isError).map((result) => (result.structuredContent.error as { reason?: string }).reason);
    expect(allowed).toHaveLength(21);
    expect(new Set(refused)).toEqual(new Set(['per_day_exceeded']));
    expect(await double.simulator.listRefunds(payment)).toHaveLength(21);
    // Each replica reserved some of them: the cap held across the three, not within one.
    const reservedBy = queryStore<{ instances: number }>(store(), "SELECT count(DISTINCT instance_id) AS instances FROM reservations WHERE tool = 'refund' AND currency = 'USD'");
    expect(reservedBy[0]!.instances).toBe(3);
    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/Audit log intact: \d+ rows/);
  }, 60_000);

  it('take an approval asked on one replica in the console of another, and use it on a third', async () => {
    const payment = await paidPayment('APPROVE-1');
    const onFirst = await clientOver([0]);
    const asked = await onFirst.call('refund', { payment_id: payment, amount: '300.00' });
    await onFirst.close();
    const approvalId = (asked.structuredContent.error as { approval_id: string }).approval_id;
    expect(approvalId).toMatch(/^ap_/);

    // alice signs in to the second replica's console and approves.
    const console = replicas[1]!.url;
    const signInPage = await fetch(`${console}/console/sign-in`);
    const signInCookie = /mim_console_signin=([^;]+)/.exec(signInPage.headers.get('set-cookie') ?? '')![1]!;
    const signInCsrf = /name="csrf" value="([^"]+)"/.exec(await signInPage.text())![1]!;
    const signedIn = await fetch(`${console}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `mim_console_signin=${signInCookie}`, Origin: console },
      body: new URLSearchParams({ csrf: signInCsrf, token: ALICE.token }).toString(),
    });
    const session = /mim_console=([^;]+)/.exec(signedIn.headers.get('set-cookie') ?? '')![1]!;
    const approvals = await (await fetch(`${console}/console/approvals`, { headers: { Cookie: `mim_console=${session}` } })).text();
    expect(approvals).toContain(approvalId);
    const csrf = /name="csrf" value="([^"]+)"/.exec(approvals)![1]!;
    const decided = await fetch(`${console}/console/approvals/${approvalId}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `mim_console=${session}`, Origin: console },
      body: new URLSearchParams({ csrf, decision: 'approve', note: 'checked the invoice' }).toString(),
    });
    expect([200, 303]).toContain(decided.status);

    const onThird = await clientOver([2]);
    const used = await onThird.call('refund', { payment_id: payment, amount: '300.00', approval_id: approvalId });
    await onThird.close();
    expect(used.isError, JSON.stringify(used.structuredContent)).toBe(false);
    expect(await double.simulator.listRefunds(payment)).toHaveLength(1);
    const rows = queryStore<{ reason: string }>(store(), "SELECT reason FROM audit_log WHERE call_id = ? AND kind = 'decision'", used.structuredContent.audit_id);
    expect(rows[0]!.reason).toBe('approved');
  }, 60_000);

  it('take Mollie\'s webhook on any replica', async () => {
    const desk = await clientOver([0]);
    const made = await desk.call('create_invoice_payment', { invoice_id: 'HOOK-1', amount: '80.00' });
    await desk.close();
    const linkId = String(made.structuredContent.payment_link_id);
    const paid = double.simulator.payThroughLink(linkId, 'paid');
    // Mollie posts the payment's id to the address it was given; the load balancer hands it to the third replica.
    const answer = await fetch(`${replicas[2]!.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${paid.id}` });
    expect(answer.status).toBe(200);
    const recorded = queryStore<{ status: string; link_id: string }>(store(), 'SELECT status, link_id FROM payments WHERE payment_id = ?', paid.id);
    expect(recorded).toEqual([{ status: 'paid', link_id: linkId }]);
    const events = queryStore<{ n: number }>(store(), "SELECT count(*) AS n FROM audit_log WHERE agent = 'mollie-webhook' AND payment_id = ?", paid.id);
    expect(events[0]!.n).toBeGreaterThan(0);
  }, 60_000);

  it('settles the calls of a replica killed with SIGKILL mid-refund from a replica started after it', async () => {
    const payments = await Promise.all(Array.from({ length: 4 }, (_, i) => paidPayment(`KILL-${i}`)));
    // Mollie answers these refunds a minute late: they are made at Mollie, but the replica dies before it hears.
    for (const id of payments) double.inject({ fault: { kind: 'delay', ms: 60_000 }, method: 'POST', path: new RegExp(`^/v2/payments/${id}/refunds$`) });
    const victim = replicas[0]!;
    const desk = await clientOver([0]);
    const calls = payments.map((id) => desk.call('refund', { payment_id: id, amount: '20.00' }).catch(() => null));
    await until(() => payments.every((id) => double.requests.some((request) => request.method === 'POST' && request.path === `/v2/payments/${id}/refunds`)), 'the refunds to reach Mollie');
    const pending = () => queryStore<{ n: number }>(store(), "SELECT count(*) AS n FROM reservations WHERE state = 'reserved' AND tool = 'refund'")[0]!.n;
    expect(pending()).toBe(4);
    victim.child.kill('SIGKILL');
    await victim.exited;
    void Promise.all(calls);
    // A replica that starts now finds the dead one's calls (its heartbeat stops) and asks Mollie what became of them.
    const successor = await startReplica();
    replicas[0] = successor;
    await until(() => pending() === 0, 'the interrupted refunds to be settled', 75_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${successor.stderr().split('\n').filter((line) => /"level":(40|50)/.test(line)).join('\n')}`);
    });
    const outcomes = queryStore<{ outcome: string; refund_id: string | null }>(
      store(),
      "SELECT o.outcome, o.refund_id FROM audit_log o JOIN audit_log d ON d.call_id = o.call_id AND d.kind = 'decision' WHERE o.kind = 'outcome' AND d.payment_id IN (?, ?, ?, ?) AND d.tool = 'refund'",
      ...payments,
    );
    expect(outcomes).toHaveLength(4);
    expect(outcomes.every((row) => row.outcome === 'ok' && row.refund_id !== null)).toBe(true);
    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout).toBe(0);
  }, 120_000);
});
