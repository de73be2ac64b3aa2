/**
 * Budgets that hold: three server processes (three Claude Desktop windows, say) on one database file refund in
 * parallel against one Mollie. Together they must stop exactly at the daily cap: not one cent over, none lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest } from '../support/store-under-test.js';

const POLICY = `agent: refunder
rate_limit: { per_minute: 1000 }
tools:
  refund:
    limits:
      EUR: { per_call: "10.00", per_day: "100.00", count_per_day: 1000 }
`;

let double: MollieApiDouble;
let workspace: Workspace;
let servers: ServerHandle[] = [];

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace({ refunder: POLICY });
  servers = await Promise.all([0, 1, 2].map(() => spawnServer({ agent: 'refunder', workspace, env: mollieDoubleEnv(double.url) })));
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  await double.close();
  workspace.remove();
});

describe('three processes on one database refunding in parallel', () => {
  it('stop exactly at the 100.00 EUR daily cap', async () => {
    const payment = await double.simulator.createPayment(
      { amount: { value: '1000.00', currency: 'EUR' }, description: 'Invoice RACE-1', redirectUrl: 'https://shop.example.com/thanks' },
      { idempotencyKey: 'race-payment' },
    );
    double.simulator.simulate(payment.id, 'paid');

    const perProcess = 8; // 24 attempts of 10.00 EUR against a cap of 100.00 EUR
    const results = await Promise.all(
      servers.flatMap((server) => Array.from({ length: perProcess }, () => server.call('refund', { payment_id: payment.id, amount: '10.00', allow_repeat: true }))),
    );
    const ok = results.filter((result) => !result.isError);
    const denied = results.filter((result) => result.isError);
    expect(ok).toHaveLength(10);
    expect(denied).toHaveLength(14);
    for (const result of denied) expect(result.structuredContent.error).toMatchObject({ code: 'policy_denied', reason: 'per_day_exceeded' });

    // Mollie saw exactly ten refunds, each with its own key, and holds exactly 100.00 EUR refunded.
    const posts = double.requests.filter((request) => request.method === 'POST' && request.path.endsWith('/refunds'));
    expect(posts).toHaveLength(10);
    expect(new Set(posts.map((request) => request.headers['idempotency-key'])).size).toBe(10);
    expect((await double.simulator.getPayment(payment.id)).amountRefunded).toEqual({ value: '100.00', currency: 'EUR' });

    // Every call left two rows, in one unbroken chain, though three processes wrote them.
    const db = openStoreForTest(workspace);
    const counts = db.prepare("SELECT kind, count(*) AS n FROM audit_log WHERE tool = 'refund' GROUP BY kind ORDER BY kind").all();
    const spent = db.prepare("SELECT sum(amount_minor) AS minor FROM reservations WHERE state = 'spent'").get() as { minor: number };
    db.close();
    expect(counts).toEqual([{ kind: 'decision', n: 24 }, { kind: 'outcome', n: 24 }]);
    expect(spent.minor).toBe(10_000);
  });

  it('leave a hash chain that verifies', async () => {
    const { AuditLog } = await import('../../src/audit/audit-log.js');
    const { openDatabase } = await import('../../src/database.js');
    const db = openDatabase(workspace.db);
    const result = new AuditLog(db).verify();
    db.close();
    expect(result).toMatchObject({ ok: true, rows: 48 });
  });
});
