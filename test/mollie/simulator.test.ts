import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/database.js';
import { MollieSimulator } from '../../src/mollie/simulator.js';
import { SqliteSimulatorState } from '../../src/mollie/simulator-state.js';
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

// The saved state of `serve --simulator`: the port and the customer are two simulators on two connections to one file,
// as two server processes (or a server and the `simulate` command) are.
describeMolliePortContract('simulator on a saved state shared by two processes', async () => {
  let now = Date.parse('2026-11-21T14:00:00Z');
  const folder = mkdtempSync(join(tmpdir(), 'sim-state-'));
  const file = join(folder, 'simulator.db');
  const [serverDb, customerDb] = [openDatabase(file), openDatabase(file)];
  const clock = () => new Date(now);
  const server = new MollieSimulator({ now: clock, state: new SqliteSimulatorState(serverDb) });
  const customer = new MollieSimulator({ now: clock, state: new SqliteSimulatorState(customerDb) });
  return {
    port: server,
    customer: (paymentId, outcome) => void customer.simulate(paymentId, outcome),
    throughLink: (linkId, outcome) => customer.payThroughLink(linkId, outcome).id,
    advanceClock: (ms) => {
      now += ms;
    },
    settleRefund: (refundId, status) => void customer.settleRefund(refundId, status),
    close: async () => {
      serverDb.close();
      customerDb.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
});

describe('simulator on a saved state', () => {
  it('keeps payments, links and refunds across a restart, and hands out the checkout URL of the page serving now', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'sim-restart-'));
    const file = join(folder, 'simulator.db');
    try {
      const before = openDatabase(file);
      const first = new MollieSimulator({ state: new SqliteSimulatorState(before), checkoutBaseUrl: 'http://127.0.0.1:3334/checkout/' });
      const payment = await first.createPayment(invoicePayment(), { idempotencyKey: 'p1' });
      first.simulate(payment.id, 'paid');
      const refund = await first.createRefund(payment.id, { amount: { value: '20.00', currency: 'EUR' } }, { idempotencyKey: 'r1' });
      const link = await first.createPaymentLink({ amount: { value: '5.00', currency: 'EUR' }, description: 'Invoice 7' }, { idempotencyKey: 'l1' });
      before.close();

      const after = openDatabase(file);
      const second = new MollieSimulator({ state: new SqliteSimulatorState(after), checkoutBaseUrl: 'http://127.0.0.1:41000/checkout/' });
      expect(await second.getPayment(payment.id)).toMatchObject({ status: 'paid', amountRefunded: { value: '20.00' }, amountRemaining: { value: '100.50' } });
      expect((await second.listRefunds(payment.id)).map((r) => [r.id, r.status])).toEqual([[refund.id, 'pending']]);
      expect((await second.getPaymentLink(link.id)).url).toBe(`http://127.0.0.1:41000/checkout/${link.id}`);
      // The same key replays the first answer, from the file.
      const replay = await second.createPaymentLink({ amount: { value: '5.00', currency: 'EUR' }, description: 'Invoice 7' }, { idempotencyKey: 'l1' });
      expect(replay.id).toBe(link.id);
      after.close();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('forgets Idempotency-Key answers past Mollie\'s 24 hours, so a long-lived file does not keep them', async () => {
    let now = Date.parse('2026-11-21T14:00:00Z');
    const db = openDatabase(':memory:');
    const simulator = new MollieSimulator({ now: () => new Date(now), state: new SqliteSimulatorState(db) });
    await simulator.createPayment(invoicePayment(), { idempotencyKey: 'old' });
    now += 24 * 60 * 60 * 1000 + 1;
    await simulator.createPayment(invoicePayment(), { idempotencyKey: 'new' });
    expect(db.prepare('SELECT key FROM simulator_replies').all()).toEqual([{ key: 'new' }]);
    db.close();
  });

  it('settles a refund as Mollie does: pending first, refunded after a while', async () => {
    let now = Date.parse('2026-11-21T14:00:00Z');
    const simulator = new MollieSimulator({ now: () => new Date(now), refundSettlesAfterMs: 10_000 });
    const payment = await simulator.createPayment(invoicePayment(), { idempotencyKey: 'p' });
    simulator.simulate(payment.id, 'paid');
    await simulator.createRefund(payment.id, { amount: { value: '10.00', currency: 'EUR' } }, { idempotencyKey: 'r' });
    expect((await simulator.listRefunds(payment.id))[0]!.status).toBe('pending');
    now += 9_999;
    expect((await simulator.listRefunds(payment.id))[0]!.status).toBe('pending');
    now += 1;
    expect((await simulator.listRefunds(payment.id))[0]!.status).toBe('refunded');
    expect(await simulator.getPayment(payment.id)).toMatchObject({ amountRefunded: { value: '10.00' }, amountRemaining: { value: '110.50' } });
  });

  it('changes nothing when an operation is refused halfway', async () => {
    const db = openDatabase(':memory:');
    const simulator = new MollieSimulator({ state: new SqliteSimulatorState(db) });
    const payment = await simulator.createPayment(invoicePayment(), { idempotencyKey: 'p' });
    simulator.simulate(payment.id, 'paid');
    await expect(simulator.createRefund(payment.id, { amount: { value: '999.00', currency: 'EUR' } }, { idempotencyKey: 'r' })).rejects.toThrow(/higher than the amount remaining/);
    expect(await simulator.listRefunds(payment.id)).toEqual([]);
    expect(db.prepare("SELECT key FROM simulator_replies").all()).toEqual([{ key: 'p' }]);
    db.close();
  });
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
