import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/database.js';
import { CustomerRefused, playCustomer } from '../../src/mollie/simulated-customer.js';
import { MollieSimulator } from '../../src/mollie/simulator.js';
import { PaymentRecords } from '../../src/payments/payment-records.js';
import { MollieWebhook } from '../../src/webhooks/mollie-webhook.js';

function world() {
  const db = openDatabase(':memory:');
  const simulator = new MollieSimulator();
  const webhook = new MollieWebhook({ mollie: simulator, payments: new PaymentRecords(db), audit: new AuditLog(db), logger: pino({ level: 'silent' }) });
  return { simulator, webhook };
}

describe('playCustomer', () => {
  it('refuses cleanly when another customer paid between its check and its payment', async () => {
    const { simulator, webhook } = world();
    const link = await simulator.createPaymentLink({ amount: { value: '5.00', currency: 'EUR' }, description: 'Invoice 1' }, { idempotencyKey: 'l' });
    simulator.payThroughLink(link.id, 'paid');
    // The check ran before the other customer's payment (another process, a moment earlier): it saw nothing wrong.
    const stale = Object.create(simulator, { linkRefusal: { value: () => null } }) as MollieSimulator;
    const refused = await playCustomer(stale, webhook, link.id, 'paid', 'simulate command').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CustomerRefused);
    expect((refused as Error).message).toBe(`${link.id}: This payment link has already been paid.`);
  });

  it('says why a finished payment cannot change', async () => {
    const { simulator, webhook } = world();
    const payment = await simulator.createPayment({ amount: { value: '5.00', currency: 'EUR' }, description: 'Invoice 2' }, { idempotencyKey: 'p' });
    await playCustomer(simulator, webhook, payment.id, 'canceled', 'simulate command');
    await expect(playCustomer(simulator, webhook, payment.id, 'paid', 'simulate command')).rejects.toThrow(new CustomerRefused(`${payment.id} is canceled: only an open payment can become paid.`));
  });
});
