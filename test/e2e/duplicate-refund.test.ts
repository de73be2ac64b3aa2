/**
 * The duplicate guard: agents retry after errors, and a retried refund is money gone twice. An identical refund (same
 * payment, same amount) within 10 minutes is refused as `conflict`, naming the earlier refund, unless the call says
 * allow_repeat: true. Asserted on what the Mollie double received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';

const POLICY = `agent: desk
rate_limit: { per_minute: 1000 }
tools:
  refund:
    limits:
      EUR: { per_call: "500.00", per_day: "5000.00" }
`;

let double: MollieApiDouble;
let workspace: Workspace;
let desk: ServerHandle;

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace({ desk: POLICY });
  desk = await spawnServer({ agent: 'desk', workspace, env: mollieDoubleEnv(double.url) });
});

afterAll(async () => {
  await desk.close();
  await double.close();
  workspace.remove();
});

let n = 0;
async function paidPayment(): Promise<string> {
  n += 1;
  const payment = await double.simulator.createPayment({ amount: { value: '1000.00', currency: 'EUR' }, description: `Invoice DUP-${n}`, redirectUrl: 'https://shop.example.com/thanks' }, { idempotencyKey: `dup-${n}` });
  double.simulator.simulate(payment.id, 'paid');
  return payment.id;
}

const refundPosts = (paymentId: string): number => double.requests.filter((request) => request.method === 'POST' && request.path === `/v2/payments/${paymentId}/refunds`).length;
const errorOf = (result: { structuredContent: Record<string, unknown> }) => result.structuredContent.error as { code: string; reason?: string; message: string; field?: string };

describe('the same refund twice', () => {
  it('is refused as a conflict naming the earlier refund; allow_repeat lets a deliberate second one through', async () => {
    const paymentId = await paidPayment();
    const first = await desk.call('refund', { payment_id: paymentId, amount: '25.00' });
    expect(first.isError).toBe(false);
    const refundId = String(first.structuredContent.refund_id);

    const retry = await desk.call('refund', { payment_id: paymentId, amount: '25.00' });
    expect(errorOf(retry)).toMatchObject({ code: 'conflict', reason: 'duplicate_call', field: 'allow_repeat' });
    expect(errorOf(retry).message).toContain(refundId);
    expect(errorOf(retry).message).toContain('allow_repeat: true');
    expect(refundPosts(paymentId)).toBe(1);

    const other = await desk.call('refund', { payment_id: paymentId, amount: '25.01' });
    expect(other.isError).toBe(false);
    const deliberate = await desk.call('refund', { payment_id: paymentId, amount: '25.00', allow_repeat: true });
    expect(deliberate.isError).toBe(false);
    expect(refundPosts(paymentId)).toBe(3);
  });

  it('five identical refunds at once: exactly one reaches Mollie', async () => {
    const paymentId = await paidPayment();
    const results = await Promise.all(Array.from({ length: 5 }, () => desk.call('refund', { payment_id: paymentId, amount: '40.00' })));
    expect(results.filter((result) => !result.isError)).toHaveLength(1);
    const refused = results.filter((result) => result.isError).map(errorOf);
    expect(refused).toHaveLength(4);
    for (const error of refused) expect(error).toMatchObject({ code: 'conflict', reason: 'duplicate_call' });
    expect(refundPosts(paymentId)).toBe(1);
  });

  it('a refund Mollie already has from elsewhere (the dashboard, another server) counts too', async () => {
    const paymentId = await paidPayment();
    const elsewhere = await double.simulator.createRefund(paymentId, { amount: { value: '60.00', currency: 'EUR' } }, { idempotencyKey: 'dashboard-refund' });
    const refused = await desk.call('refund', { payment_id: paymentId, amount: '60.00' });
    expect(errorOf(refused)).toMatchObject({ code: 'conflict', reason: 'duplicate_call' });
    expect(errorOf(refused).message).toContain(elsewhere.id);
    expect(refundPosts(paymentId)).toBe(0);
  });

  it('after a refund that definitely failed, the same refund may be tried again', async () => {
    const paymentId = await paidPayment();
    double.inject({ fault: { kind: 'status', status: 422, body: { status: 422, title: 'Unprocessable Entity', detail: 'The refund could not be created.', field: 'amount' } }, method: 'POST', path: /\/refunds$/ });
    const failed = await desk.call('refund', { payment_id: paymentId, amount: '70.00' });
    expect(errorOf(failed).code).toBe('mollie_rejected');
    const again = await desk.call('refund', { payment_id: paymentId, amount: '70.00' });
    expect(again.isError).toBe(false);
  });
});
