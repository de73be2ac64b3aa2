/**
 * Replacing an invoice's pay link when things go wrong, end to end over stdio against the https double: Mollie failing
 * the archive, the server killed between the archive and the create (or with the create's answer lost), and two
 * processes replacing the same invoice's link at once. Whatever happens, the invoice never ends with two payable
 * links, an old amount stays unpayable once it was withdrawn, and no creation is ever made twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLERK_POLICY, errorOf } from '../support/link-scenarios.js';
import { startMollieApiDouble, type Fault, type MollieApiDouble } from '../support/mollie-api-double.js';
import { queryStore, until } from '../support/waiting.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';

let double: MollieApiDouble;
let workspace: Workspace;
let clerk: ServerHandle;
const servers: ServerHandle[] = [];

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace({ clerk: CLERK_POLICY() });
  clerk = await spawn();
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close().catch(() => undefined)));
  await double.close();
  workspace.remove();
});

async function spawn(): Promise<ServerHandle> {
  const server = await spawnServer({ agent: 'clerk', workspace, env: mollieDoubleEnv(double.url) });
  servers.push(server);
  return server;
}

/** The invoice's links at Mollie, by the description the server gives them. */
async function linksAtMollie(invoice: string) {
  return (await double.simulator.listRecentPaymentLinks(250)).filter((link) => link.description === `Invoice ${invoice}`);
}

async function payableAtMollie(invoice: string) {
  return (await linksAtMollie(invoice)).filter((link) => !link.archived);
}

const query = <T>(sql: string, ...params: unknown[]): T[] => queryStore<T>(workspace, sql, ...params);

describe('Mollie failing the archive of the old link', () => {
  const cases: { name: string; fault: Fault; times: number; code: string }[] = [
    { name: '503, every time', fault: { kind: 'status', status: 503 }, times: 20, code: 'mollie_unavailable' },
    { name: '429 with Retry-After, every time', fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } }, times: 20, code: 'rate_limited' },
    { name: 'a reset after Mollie archived it', fault: { kind: 'reset-after' }, times: 20, code: 'mollie_unavailable' },
    { name: 'a timeout (archived, the answer too late)', fault: { kind: 'delay', ms: 12_000 }, times: 20, code: 'mollie_unavailable' },
    { name: 'a reset before Mollie saw it', fault: { kind: 'reset-before' }, times: 20, code: 'mollie_unavailable' },
  ];

  cases.forEach((testCase, index) => {
    it.concurrent(`${testCase.name}: nothing new is made, the budget is given back, and the retry makes exactly one new link`, async () => {
      const invoice = `ARCH-FAULT-${index}`;
      const old = await clerk.call('create_invoice_payment', { invoice_id: invoice, amount: '30.00' });
      const oldId = String(old.structuredContent.payment_link_id);
      const remove = double.inject({ fault: testCase.fault, method: 'PATCH', path: new RegExp(`^/v2/payment-links/${oldId}$`), times: testCase.times });
      const failed = await clerk.call('create_invoice_payment', { invoice_id: invoice, amount: '30.00', amount_already_paid: '10.00' });
      remove();
      expect(errorOf(failed)).toMatchObject({ code: testCase.code, retryable: true });
      expect(errorOf(failed).message).toContain(`Could not make payment link ${oldId} unpayable first`);
      expect(errorOf(failed).message).toContain('nothing new was created');
      expect(await linksAtMollie(invoice)).toHaveLength(1);
      const callId = String(failed.structuredContent.audit_id);
      expect(query<{ outcome: string }>("SELECT outcome FROM audit_log WHERE call_id = ? AND kind = 'outcome'", callId)).toEqual([{ outcome: 'error' }]);
      expect(query<{ state: string }>('SELECT state FROM reservations WHERE call_id = ?', callId)).toEqual([{ state: 'released' }]);

      const retry = await clerk.call('create_invoice_payment', { invoice_id: invoice, amount: '30.00', amount_already_paid: '10.00' });
      expect(retry.isError, JSON.stringify(retry.structuredContent)).toBeFalsy();
      // After a reset or a timeout Mollie had archived it anyway: the retry finds the old link withdrawn already.
      expect(retry.structuredContent.replaced).toEqual(testCase.fault.kind === 'reset-after' || testCase.fault.kind === 'delay' ? [] : [oldId]);
      const payable = await payableAtMollie(invoice);
      expect(payable.map((link) => [link.id, link.amount?.value])).toEqual([[retry.structuredContent.payment_link_id, '20.00']]);
      expect(await linksAtMollie(invoice)).toHaveLength(2);
    });
  });
});

describe('the server killed while replacing a link', () => {
  async function replaceThenKill(invoice: string, fault: Fault): Promise<{ oldId: string }> {
    const victim = await spawn();
    const old = await victim.call('create_invoice_payment', { invoice_id: invoice, amount: '100.00' });
    const oldId = String(old.structuredContent.payment_link_id);
    double.inject({ fault, method: 'POST', path: /^\/v2\/payment-links$/, bodyIncludes: `"Invoice ${invoice}"` });
    const call = victim.call('create_invoice_payment', { invoice_id: invoice, amount: '100.00', amount_already_paid: '30.00' }).then(() => 'answered', () => 'lost');
    const posts = () => double.requests.filter((request) => request.method === 'POST' && request.path === '/v2/payment-links' && JSON.stringify(request.body).includes(`"Invoice ${invoice}"`));
    await until(() => posts().length === 2, 'the new link to be asked for');
    process.kill(victim.pid!, 'SIGKILL');
    expect(await call).toBe('lost');
    await victim.close().catch(() => undefined);
    // The old link was archived before the new one was asked for.
    expect((await double.simulator.getPaymentLink(oldId)).archived).toBe(true);
    return { oldId };
  }

  it('between the archive and the create (the create never reached Mollie): the restart completes it once, with its key', async () => {
    const { oldId } = await replaceThenKill('CRASH-LINK-1', { kind: 'hang' });
    expect(await payableAtMollie('CRASH-LINK-1')).toEqual([]);
    const restarted = await spawn();
    await until(() => restarted.stderr().includes('Reconciled calls interrupted'), 'the reconciliation', 60_000);
    const payable = await payableAtMollie('CRASH-LINK-1');
    expect(payable.map((link) => link.amount?.value)).toEqual(['70.00']);
    const keys = double.requests.filter((request) => request.method === 'POST' && JSON.stringify(request.body).includes('"Invoice CRASH-LINK-1"') && (request.body as { amount: { value: string } }).amount.value === '70.00').map((request) => request.headers['idempotency-key']);
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(1);
    const status = await restarted.call('get_payment_status', { invoice_id: 'CRASH-LINK-1' });
    expect(status.structuredContent).toMatchObject({ payment_link_id: payable[0]!.id, status: 'open', amount: { value: '70.00', currency: 'EUR' } });
    expect((status.structuredContent.payments as { payment_link_id: string; status: string }[]).map((item) => [item.payment_link_id, item.status])).toEqual([
      [oldId, 'canceled'],
      [payable[0]!.id, 'open'],
    ]);
    const outcome = query<{ outcome: string; action: string }>("SELECT o.outcome, o.action FROM audit_log o JOIN audit_log d ON d.call_id = o.call_id AND d.kind = 'decision' WHERE o.kind = 'outcome' AND d.invoice_id = 'CRASH-LINK-1' AND d.amount_value = '70.00'");
    expect(outcome).toEqual([{ outcome: 'ok', action: `created payment link ${payable[0]!.id} (completed with its own Idempotency-Key after the server stopped)` }]);
    // And the agent asking again gets that link back, not a second one.
    const again = await restarted.call('create_invoice_payment', { invoice_id: 'CRASH-LINK-1', amount: '100.00', amount_already_paid: '30.00' });
    expect(again.structuredContent).toMatchObject({ reused: true, payment_link_id: payable[0]!.id });
  }, 120_000);

  it("after Mollie made the new link but before its answer arrived: the restart finds that link, and makes no second", async () => {
    await replaceThenKill('CRASH-LINK-2', { kind: 'delay', ms: 60_000 });
    const made = await payableAtMollie('CRASH-LINK-2');
    expect(made).toHaveLength(1);
    const restarted = await spawn();
    // The agent's retry may come before any restart settles the call: it completes the creation first.
    const retry = await restarted.call('create_invoice_payment', { invoice_id: 'CRASH-LINK-2', amount: '100.00', amount_already_paid: '30.00' });
    expect(retry.structuredContent).toMatchObject({ reused: true, payment_link_id: made[0]!.id });
    expect(await payableAtMollie('CRASH-LINK-2')).toHaveLength(1);
  });
});

describe('two processes replacing the same invoice\'s link at once', () => {
  it('take turns: never two payable links, and every old one archived', async () => {
    const other = await spawn();
    const invoice = 'RACE-LINK';
    await clerk.call('create_invoice_payment', { invoice_id: invoice, amount: '100.00' });
    // Mollie is slow to archive, so the two calls overlap.
    double.inject({ fault: { kind: 'delay', ms: 400 }, method: 'PATCH', times: 4 });
    const results = await Promise.all([
      clerk.call('create_invoice_payment', { invoice_id: invoice, amount: '100.00', amount_already_paid: '20.00' }),
      other.call('create_invoice_payment', { invoice_id: invoice, amount: '100.00', amount_already_paid: '40.00' }),
    ]);
    for (const result of results.filter((candidate) => candidate.isError)) {
      // The one that waited may find the invoice changed under it and is told to call again.
      expect(errorOf(result)).toMatchObject({ code: 'conflict', retryable: true });
    }
    expect(results.some((result) => !result.isError)).toBe(true);
    const payable = await payableAtMollie(invoice);
    expect(payable).toHaveLength(1);
    const status = await clerk.call('get_payment_status', { invoice_id: invoice });
    const open = (status.structuredContent.payments as { status: string }[]).filter((item) => item.status === 'open');
    expect(open).toHaveLength(1);
  });
});
