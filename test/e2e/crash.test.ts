/**
 * Crash safety: the server is killed with SIGKILL while 32 writes are in flight at Mollie. After a restart the hash
 * chain verifies, every call that reached Mollie has its decision row, and the start-up reconciliation asks Mollie
 * what happened to each interrupted call and writes that outcome: ok where Mollie has it, "did not happen" where it
 * does not. Then several processes hammer one database: no SQLITE_BUSY reaches a caller.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { queryStore, until } from '../support/waiting.js';
import { CLI, createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { storeArgs } from '../support/store-under-test.js';

const POLICY = `agent: busy
rate_limit: { per_minute: 10000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100.00", per_day: "100000.00", count_per_day: 100000 }
  refund:
    limits:
      EUR: { per_call: "100.00", per_day: "100000.00", count_per_day: 100000 }
  get_payment_status: {}
  list_logs: { scope: all }
`;

let double: MollieApiDouble;
let workspace: Workspace;
const servers: ServerHandle[] = [];

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace({ busy: POLICY });
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close().catch(() => undefined)));
  await double.close();
  workspace.remove();
});

const query = <T>(sql: string, ...params: unknown[]): T[] => queryStore<T>(workspace, sql, ...params);

describe('SIGKILL with 32 writes in flight', () => {
  it('leaves a verifiable log, and the restart settles every interrupted call with what Mollie says', async () => {
    const paid: string[] = [];
    for (let i = 0; i < 16; i += 1) {
      const payment = await double.simulator.createPayment({ amount: { value: '500.00', currency: 'EUR' }, description: `Invoice KILL-R${i}`, redirectUrl: 'https://shop.example.com/thanks' }, { idempotencyKey: `kill-paid-${i}` });
      double.simulator.simulate(payment.id, 'paid');
      paid.push(payment.id);
    }
    // Mollie takes its time: pay links (8 payment links, 8 checkouts) and half the refunds are done at Mollie but not
    // yet answered when the server dies; the other half of the refunds are lost on the way and never happen.
    double.inject({ fault: { kind: 'delay', ms: 60_000 }, method: 'POST', path: /^\/v2\/payments$/, times: 8 });
    double.inject({ fault: { kind: 'delay', ms: 60_000 }, method: 'POST', path: /^\/v2\/payment-links$/, times: 8 });
    for (const id of paid.slice(0, 8)) double.inject({ fault: { kind: 'delay', ms: 60_000 }, method: 'POST', path: new RegExp(`^/v2/payments/${id}/refunds$`) });
    for (const id of paid.slice(8)) double.inject({ fault: { kind: 'hang' }, method: 'POST', path: new RegExp(`^/v2/payments/${id}/refunds$`) });

    const victim = await spawnServer({ agent: 'busy', workspace, env: mollieDoubleEnv(double.url) });
    const calls = [
      ...Array.from({ length: 16 }, (_, i) => victim.call('create_invoice_payment', { invoice_id: `KILL-${i}`, amount: '10.00', kind: i % 2 === 0 ? 'payment_link' : 'checkout' })),
      ...paid.map((id, i) => victim.call('refund', { payment_id: id, amount: `${i + 1}.00` })),
    ].map((call) => call.then(() => 'answered', () => 'lost'));
    const posts = () => double.requests.filter((request) => request.method === 'POST');
    await until(() => posts().length >= 32, '32 writes to reach Mollie');

    process.kill(victim.pid!, 'SIGKILL');
    expect(new Set(await Promise.all(calls))).toEqual(new Set(['lost']));
    await victim.close().catch(() => undefined);

    // Every write Mollie received has its decision row, found by the Idempotency-Key the server recorded first.
    const keys = posts().map((request) => String(request.headers['idempotency-key']));
    expect(new Set(keys).size).toBe(32);
    const decided = query<{ idempotency_key: string }>("SELECT idempotency_key FROM audit_log WHERE kind = 'decision' AND decision = 'allowed'");
    expect(keys.filter((key) => !decided.some((row) => row.idempotency_key === key))).toEqual([]);
    expect(query<{ n: number }>("SELECT count(*) AS n FROM reservations WHERE state = 'reserved'")[0]!.n).toBe(32);
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' })).toMatch(/intact: 32 rows/);

    // The restart asks Mollie about each one.
    const restarted = await spawnServer({ agent: 'busy', workspace, env: mollieDoubleEnv(double.url) });
    servers.push(restarted);
    await until(() => restarted.stderr().includes('Reconciled calls interrupted'), 'the reconciliation', 60_000);
    expect(restarted.stderr()).toMatch(/"interrupted":32,"happened":24,"didNotHappen":8,"unknown":0/);

    const outcomes = query<{ tool: string; outcome: string; error_code: string | null; action: string | null; error_message: string | null }>(
      "SELECT tool, outcome, error_code, action, error_message FROM audit_log WHERE kind = 'outcome' ORDER BY seq",
    );
    expect(outcomes).toHaveLength(32);
    expect(outcomes.filter((row) => row.tool === 'create_invoice_payment' && row.outcome === 'ok')).toHaveLength(16);
    expect(outcomes.filter((row) => row.tool === 'refund' && row.outcome === 'ok')).toHaveLength(8);
    const lost = outcomes.filter((row) => row.outcome === 'error');
    expect(lost).toHaveLength(8);
    for (const row of lost) expect(row).toMatchObject({ tool: 'refund', error_code: 'interrupted' });
    expect(lost[0]!.error_message).toContain('it did not happen');
    expect(outcomes.find((row) => row.tool === 'refund' && row.outcome === 'ok')!.action).toMatch(/^refund re_\w+ of \d+\.00 EUR is pending \(found at Mollie after a restart\)$/);

    // Budgets: what happened is spent, what did not is given back.
    const states = query<{ state: string; n: number; minor: number }>('SELECT state, count(*) AS n, sum(amount_minor) AS minor FROM reservations GROUP BY state ORDER BY state');
    expect(states).toEqual([
      { state: 'released', n: 8, minor: (9 + 10 + 11 + 12 + 13 + 14 + 15 + 16) * 100 },
      { state: 'spent', n: 24, minor: 16 * 1000 + (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) * 100 },
    ]);

    // The links and checkouts found at Mollie are this server's records again: the invoice answers by its id, and
    // asking again reuses what the dead server's call made instead of making a second one.
    const status = await restarted.call('get_payment_status', { invoice_id: 'KILL-3' });
    expect(status.structuredContent).toMatchObject({ invoice_id: 'KILL-3', kind: 'checkout', status: 'open' });
    const link = await restarted.call('get_payment_status', { invoice_id: 'KILL-2' });
    expect(link.structuredContent).toMatchObject({ invoice_id: 'KILL-2', kind: 'payment_link', status: 'open' });
    const again = await restarted.call('create_invoice_payment', { invoice_id: 'KILL-2', amount: '10.00' });
    expect(again.structuredContent).toMatchObject({ reused: true, payment_link_id: link.structuredContent.payment_link_id });
    expect((await double.simulator.listRecentPaymentLinks(250)).filter((made) => made.description === 'Invoice KILL-2')).toHaveLength(1);
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' })).toMatch(/intact: \d+ rows/);
    // Settled only once the calls are older than the Mollie deadline and a margin (30 s): a write may still land.
  }, 120_000);
});

describe('several processes on one database', () => {
  it('4 processes x 25 concurrent calls: every call answered, none with SQLITE_BUSY', async () => {
    const four = await Promise.all([0, 1, 2, 3].map(() => spawnServer({ agent: 'busy', workspace, env: mollieDoubleEnv(double.url) })));
    servers.push(...four);
    const results = await Promise.all(
      four.flatMap((server, p) =>
        Array.from({ length: 25 }, (_, i) =>
          i % 5 === 0
            ? server.call('list_logs', { limit: 5 })
            : server.call('create_invoice_payment', { invoice_id: `MANY-${p}-${i}`, amount: '1.00' }),
        ),
      ),
    );
    const failures = results.filter((result) => result.isError).map((result) => JSON.stringify(result.structuredContent.error));
    expect(failures).toEqual([]);
    for (const server of four) expect(server.stderr()).not.toMatch(/SQLITE_BUSY|database is locked/);
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' })).toMatch(/intact/);
  });
});
