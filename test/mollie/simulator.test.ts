import { describe, expect, it } from 'vitest';
import { MollieSimulator } from '../../src/mollie/simulator.js';
import { describeMolliePortContract, invoicePayment } from './port-contract.js';

describeMolliePortContract('simulator', async () => {
  let now = Date.parse('2026-11-21T14:00:00Z');
  const simulator = new MollieSimulator({ now: () => new Date(now) });
  return {
    port: simulator,
    customer: (paymentId, outcome) => void simulator.simulate(paymentId, outcome),
    throughLink: (linkId, outcome) => simulator.payThroughLink(linkId, outcome).id,
    advanceClock: (ms) => {
      now += ms;
    },
    settleRefund: (refundId, status) => void simulator.settleRefund(refundId, status),
    close: async () => {},
  };
});

describe('simulator, playing the customer', () => {
  it('will not pay a payment twice or revive a final one', async () => {
    const simulator = new MollieSimulator();
    const payment = await simulator.createPayment(invoicePayment(), { idempotencyKey: 'k1' });
    simulator.simulate(payment.id, 'paid');
    expect(() => simulator.simulate(payment.id, 'paid')).toThrow(/paid, not open/);
    expect(() => simulator.simulate(payment.id, 'failed')).toThrow(/only an open or pending payment/);
  });

  it('stays usable without a redirect URL, for the offline demo', async () => {
    const simulator = new MollieSimulator();
    const payment = await simulator.createPayment({ amount: { value: '5.00', currency: 'EUR' }, description: 'Invoice 1' }, { idempotencyKey: 'k2' });
    expect(payment.redirectUrl).toBeNull();
  });

  it('hands out copies: changing a returned payment changes nothing inside', async () => {
    const simulator = new MollieSimulator();
    const payment = await simulator.createPayment(invoicePayment(), { idempotencyKey: 'k3' });
    payment.amount.value = '0.01';
    payment.status = 'paid';
    expect(await simulator.getPayment(payment.id)).toMatchObject({ status: 'open', amount: { value: '120.50' } });
  });
});
