/**
 * One contract for every MolliePort implementation. The simulator and the real adapter (over the https double of
 * Mollie's API) both run it, so what a tool can rely on is the same offline and against Mollie.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MollieError } from '../../src/mollie/errors.js';
import type { CreatePaymentLinkRequest, CreatePaymentRequest, MolliePort } from '../../src/mollie/port.js';
import type { CustomerOutcome, LinkPaymentOutcome } from '../../src/mollie/simulator.js';

export interface PortHarness {
  port: MolliePort;
  /** The customer acts on the checkout page (or Mollie's clock runs out). */
  customer(paymentId: string, outcome: CustomerOutcome): void;
  /** The customer opens a payment link and pays (or fails, or leaves the payment under way); the payment's id. */
  throughLink(linkId: string, outcome: LinkPaymentOutcome): string;
  /** Moves Mollie's clock forward. */
  advanceClock(ms: number): void;
  settleRefund(refundId: string, status: 'refunded' | 'failed'): void;
  close(): Promise<void>;
}

let keys = 0;
const key = (label: string) => `contract-${label}-${Date.now()}-${(keys += 1)}`;

export const invoicePayment = (overrides: Partial<CreatePaymentRequest> = {}): CreatePaymentRequest => ({
  amount: { value: '120.50', currency: 'EUR' },
  description: 'Invoice 2026-114',
  redirectUrl: 'https://pay.example.com/thanks/2026-114',
  webhookUrl: 'https://hooks.example.com/webhooks/mollie',
  metadata: { invoice_id: '2026-114' },
  ...overrides,
});

export const invoiceLink = (overrides: Partial<CreatePaymentLinkRequest> = {}): CreatePaymentLinkRequest => ({
  amount: { value: '120.50', currency: 'EUR' },
  description: 'Invoice 2026-114',
  expiresAt: '2026-12-21T23:59:59.000Z',
  redirectUrl: 'https://pay.example.com/thanks/2026-114',
  webhookUrl: 'https://hooks.example.com/webhooks/mollie',
  ...overrides,
});

/** Awaits a call that must fail with a MollieError, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<MollieError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to be refused');
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(MollieError);
  return error as MollieError;
}

export function describeMolliePortContract(name: string, setup: () => Promise<PortHarness>): void {
  describe(`MolliePort contract: ${name}`, () => {
    let harness: PortHarness;
    let port: MolliePort;
    beforeEach(async () => {
      harness = await setup();
      port = harness.port;
    });
    afterEach(async () => {
      await harness.close();
    });

    async function paidPayment(value = '100.00') {
      const payment = await port.createPayment(invoicePayment({ amount: { value, currency: 'EUR' } }), { idempotencyKey: key('pay') });
      harness.customer(payment.id, 'paid');
      return payment;
    }

    it('creates an open payment with a pay link, an expiry and the invoice in its metadata', async () => {
      const payment = await port.createPayment(invoicePayment(), { idempotencyKey: key('create') });
      expect(payment.id).toMatch(/^tr_[A-Za-z0-9]+$/);
      expect(payment).toMatchObject({
        mode: 'test',
        status: 'open',
        isFinal: false,
        amount: { value: '120.50', currency: 'EUR' },
        amountRefunded: null,
        amountRemaining: null,
        description: 'Invoice 2026-114',
        redirectUrl: 'https://pay.example.com/thanks/2026-114',
        webhookUrl: 'https://hooks.example.com/webhooks/mollie',
        metadata: { invoice_id: '2026-114' },
        paidAt: null,
      });
      expect(payment.checkoutUrl).toMatch(/^https:\/\//);
      expect(Date.parse(payment.expiresAt!)).toBeGreaterThan(Date.parse(payment.createdAt));
      expect(await port.getPayment(payment.id)).toEqual(payment);
    });

    it('lists the newest payments first, with their metadata, so a restart can find an interrupted one', async () => {
      const older = await port.createPayment({ amount: { value: '11.00', currency: 'EUR' }, description: 'Invoice LIST-1', redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: 'LIST-1' } }, { idempotencyKey: key('list-1') });
      const newer = await port.createPayment({ amount: { value: '12.00', currency: 'EUR' }, description: 'Invoice LIST-2', redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: 'LIST-2' } }, { idempotencyKey: key('list-2') });
      const listed = await port.listRecentPayments(250);
      const ids = listed.map((payment) => payment.id);
      expect(ids.indexOf(newer.id)).toBeLessThan(ids.indexOf(older.id));
      expect(ids.indexOf(older.id)).toBeGreaterThanOrEqual(0);
      expect(listed.find((payment) => payment.id === newer.id)).toMatchObject({ amount: { value: '12.00', currency: 'EUR' }, metadata: { invoice_id: 'LIST-2' } });
      expect(await port.listRecentPayments(1)).toHaveLength(1);
    });

    it('takes zero-decimal currencies as whole numbers', async () => {
      const payment = await port.createPayment(invoicePayment({ amount: { value: '1500', currency: 'JPY' } }), { idempotencyKey: key('jpy') });
      expect(payment.amount).toEqual({ value: '1500', currency: 'JPY' });
    });

    it('replays the first answer for a repeated Idempotency-Key, so a retry never makes a second payment', async () => {
      const idempotencyKey = key('replay');
      const first = await port.createPayment(invoicePayment(), { idempotencyKey });
      const second = await port.createPayment(invoicePayment(), { idempotencyKey });
      expect(second.id).toBe(first.id);
    });

    it('refuses a reused Idempotency-Key with a different request', async () => {
      const idempotencyKey = key('reuse');
      await port.createPayment(invoicePayment(), { idempotencyKey });
      const error = await rejection(port.createPayment(invoicePayment({ amount: { value: '99.00', currency: 'EUR' } }), { idempotencyKey }));
      expect(error.code).toBe('mollie_rejected');
      expect(error.mollie?.status).toBe(422);
    });

    it('refuses an amount with the wrong number of decimals, naming the field, as Mollie does', async () => {
      const error = await rejection(port.createPayment(invoicePayment({ amount: { value: '10.5', currency: 'EUR' } }), { idempotencyKey: key('decimals') }));
      expect(error).toMatchObject({ code: 'mollie_rejected', retryable: false, effect: 'none' });
      expect(error.mollie).toMatchObject({ status: 422, title: 'Unprocessable Entity', field: 'amount.value' });
    });

    it('refuses a webhook URL Mollie cannot reach', async () => {
      const error = await rejection(port.createPayment(invoicePayment({ webhookUrl: 'http://localhost:3333/webhooks/mollie' }), { idempotencyKey: key('hook') }));
      expect(error.mollie).toMatchObject({ status: 422, field: 'webhookUrl' });
    });

    it('reports an unknown payment as not_found, and a malformed id the same way', async () => {
      const unknown = await rejection(port.getPayment('tr_doesNotExist1'));
      expect(unknown).toMatchObject({ code: 'not_found', retryable: false });
      const malformed = await rejection(port.getPayment('../../v2/refunds'));
      expect(malformed.code).toBe('not_found');
      expect(malformed.message).toMatch(/tr_/);
    });

    it('shows a paid payment as final, with what can be refunded and no pay link', async () => {
      const { id } = await paidPayment('120.50');
      const payment = await port.getPayment(id);
      expect(payment).toMatchObject({
        status: 'paid',
        isFinal: true,
        checkoutUrl: null,
        amountRefunded: { value: '0.00', currency: 'EUR' },
        amountRemaining: { value: '120.50', currency: 'EUR' },
      });
      expect(payment.paidAt).not.toBeNull();
      expect(payment.method).not.toBeNull();
    });

    it.each<[CustomerOutcome, 'failedAt' | 'canceledAt' | 'expiredAt']>([
      ['failed', 'failedAt'],
      ['canceled', 'canceledAt'],
      ['expired', 'expiredAt'],
    ])('marks a %s payment final with its date', async (outcome, dateField) => {
      const created = await port.createPayment(invoicePayment(), { idempotencyKey: key(outcome) });
      harness.customer(created.id, outcome);
      const payment = await port.getPayment(created.id);
      expect(payment).toMatchObject({ status: outcome, isFinal: true, checkoutUrl: null, paidAt: null });
      expect(payment[dateField]).not.toBeNull();
    });

    it('expires an open payment when its expiry passes', async () => {
      const created = await port.createPayment(invoicePayment(), { idempotencyKey: key('clock') });
      harness.advanceClock(Date.parse(created.expiresAt!) - Date.parse(created.createdAt) + 1_000);
      const payment = await port.getPayment(created.id);
      expect(payment).toMatchObject({ status: 'expired', isFinal: true, expiredAt: created.expiresAt });
    });

    it('cancels an open payment, and refuses to cancel a paid one', async () => {
      const open = await port.createPayment(invoicePayment(), { idempotencyKey: key('cancel') });
      const canceled = await port.cancelPayment(open.id, { idempotencyKey: key('cancel-it') });
      expect(canceled).toMatchObject({ status: 'canceled', isFinal: true });
      const { id } = await paidPayment();
      const error = await rejection(port.cancelPayment(id, { idempotencyKey: key('cancel-paid') }));
      expect(error.mollie?.status).toBe(422);
    });

    it('takes partial and multiple refunds, and keeps amountRemaining exact', async () => {
      const { id } = await paidPayment('100.00');
      const first = await port.createRefund(id, { amount: { value: '20.00', currency: 'EUR' }, description: 'Discount' }, { idempotencyKey: key('r1') });
      expect(first.id).toMatch(/^re_[A-Za-z0-9]+$/);
      expect(first).toMatchObject({ paymentId: id, amount: { value: '20.00', currency: 'EUR' }, description: 'Discount' });
      expect(['queued', 'pending', 'processing', 'refunded']).toContain(first.status);
      const second = await port.createRefund(id, { amount: { value: '30.10', currency: 'EUR' } }, { idempotencyKey: key('r2') });
      const payment = await port.getPayment(id);
      expect(payment.amountRefunded).toEqual({ value: '50.10', currency: 'EUR' });
      expect(payment.amountRemaining).toEqual({ value: '49.90', currency: 'EUR' });
      const refunds = await port.listRefunds(id);
      expect(refunds.map((refund) => refund.id)).toEqual([second.id, first.id]);
    });

    it('refuses a refund over the remainder with the 422 Mollie sends, naming the amount', async () => {
      const { id } = await paidPayment('100.00');
      await port.createRefund(id, { amount: { value: '60.00', currency: 'EUR' } }, { idempotencyKey: key('r') });
      const error = await rejection(port.createRefund(id, { amount: { value: '40.01', currency: 'EUR' } }, { idempotencyKey: key('over') }));
      expect(error).toMatchObject({ code: 'mollie_rejected', retryable: false });
      expect(error.mollie).toMatchObject({ status: 422, title: 'Unprocessable Entity', field: 'amount' });
      const exact = await port.createRefund(id, { amount: { value: '40.00', currency: 'EUR' } }, { idempotencyKey: key('rest') });
      expect(exact.amount.value).toBe('40.00');
      expect((await port.getPayment(id)).amountRemaining).toEqual({ value: '0.00', currency: 'EUR' });
    });

    it('refuses a refund on a payment that is not paid', async () => {
      const open = await port.createPayment(invoicePayment(), { idempotencyKey: key('unpaid') });
      const error = await rejection(port.createRefund(open.id, { amount: { value: '1.00', currency: 'EUR' } }, { idempotencyKey: key('r') }));
      expect(error).toMatchObject({ code: 'mollie_rejected' });
      expect(error.mollie?.status).toBe(422);
      expect(await port.listRefunds(open.id)).toEqual([]);
    });

    it('refuses a refund in another currency than the payment', async () => {
      const { id } = await paidPayment();
      const error = await rejection(port.createRefund(id, { amount: { value: '1.00', currency: 'USD' } }, { idempotencyKey: key('usd') }));
      expect(error.mollie).toMatchObject({ status: 422, field: 'amount.currency' });
    });

    it('replays a refund for a repeated Idempotency-Key instead of refunding twice', async () => {
      const { id } = await paidPayment('100.00');
      const idempotencyKey = key('refund-replay');
      const first = await port.createRefund(id, { amount: { value: '25.00', currency: 'EUR' } }, { idempotencyKey });
      const again = await port.createRefund(id, { amount: { value: '25.00', currency: 'EUR' } }, { idempotencyKey });
      expect(again.id).toBe(first.id);
      expect(await port.listRefunds(id)).toHaveLength(1);
      expect((await port.getPayment(id)).amountRemaining?.value).toBe('75.00');
    });

    describe('payment links', () => {
      it('creates a single-use link that stays payable until its expiry, with no status and no metadata', async () => {
        const link = await port.createPaymentLink(invoiceLink(), { idempotencyKey: key('link') });
        expect(link.id).toMatch(/^pl_[A-Za-z0-9]+$/);
        expect(link).toEqual({
          id: link.id,
          mode: 'test',
          description: 'Invoice 2026-114',
          amount: { value: '120.50', currency: 'EUR' },
          archived: false,
          reusable: false,
          redirectUrl: 'https://pay.example.com/thanks/2026-114',
          webhookUrl: 'https://hooks.example.com/webhooks/mollie',
          createdAt: link.createdAt,
          paidAt: null,
          expiresAt: '2026-12-21T23:59:59.000Z',
          url: link.url,
        });
        expect(link.url).toMatch(/^https?:\/\//);
        expect(link).not.toHaveProperty('status');
        expect(await port.getPaymentLink(link.id)).toEqual(link);
        expect(await port.listPaymentLinkPayments(link.id)).toEqual([]);
      });

      it('makes a payment without metadata when the customer pays through it, and marks the link paid', async () => {
        const link = await port.createPaymentLink(invoiceLink({ amount: { value: '80.00', currency: 'EUR' } }), { idempotencyKey: key('link-pay') });
        const paymentId = harness.throughLink(link.id, 'paid');
        const [payment, ...others] = await port.listPaymentLinkPayments(link.id);
        expect(others).toEqual([]);
        expect(payment).toMatchObject({ id: paymentId, status: 'paid', amount: { value: '80.00', currency: 'EUR' }, metadata: null, description: 'Invoice 2026-114', amountRemaining: { value: '80.00', currency: 'EUR' } });
        expect((await port.getPaymentLink(link.id)).paidAt).toBe(payment!.paidAt);
        // The payment is an ordinary one: it can be read and refunded like any other.
        expect(await port.getPayment(paymentId)).toEqual(payment);
        const refund = await port.createRefund(paymentId, { amount: { value: '10.00', currency: 'EUR' } }, { idempotencyKey: key('link-refund') });
        expect(refund.paymentId).toBe(paymentId);
      });

      it('keeps a link payable after a failed attempt, and lists every attempt newest first', async () => {
        const link = await port.createPaymentLink(invoiceLink(), { idempotencyKey: key('link-retry') });
        const failed = harness.throughLink(link.id, 'failed');
        const paid = harness.throughLink(link.id, 'paid');
        expect((await port.listPaymentLinkPayments(link.id)).map((payment) => [payment.id, payment.status])).toEqual([[paid, 'paid'], [failed, 'failed']]);
        expect(() => harness.throughLink(link.id, 'paid')).toThrow(/already been paid/);
      });

      it('archives a link so nobody can pay through it, and archiving again is harmless', async () => {
        const link = await port.createPaymentLink(invoiceLink(), { idempotencyKey: key('link-archive') });
        expect((await port.archivePaymentLink(link.id)).archived).toBe(true);
        expect((await port.archivePaymentLink(link.id)).archived).toBe(true);
        expect((await port.getPaymentLink(link.id)).archived).toBe(true);
        expect(() => harness.throughLink(link.id, 'paid')).toThrow(/withdrawn/);
      });

      it('stops taking payments at its expiry', async () => {
        const link = await port.createPaymentLink(invoiceLink({ expiresAt: new Date(Date.parse('2026-11-21T14:00:00Z') + 2 * 3_600_000).toISOString() }), { idempotencyKey: key('link-expiry') });
        harness.advanceClock(3 * 3_600_000);
        expect(() => harness.throughLink(link.id, 'paid')).toThrow(/expired/);
        expect(await port.getPaymentLink(link.id)).toMatchObject({ archived: false, paidAt: null });
      });

      it('refuses an expiry in the past with the 422 Mollie sends, naming expiresAt', async () => {
        const error = await rejection(port.createPaymentLink(invoiceLink({ expiresAt: '2020-01-01T00:00:00Z' }), { idempotencyKey: key('link-past') }));
        expect(error).toMatchObject({ code: 'mollie_rejected', retryable: false });
        expect(error.mollie).toMatchObject({ status: 422, field: 'expiresAt' });
      });

      it('replays a repeated Idempotency-Key, refuses it for another request, and forgets it after 24 hours', async () => {
        const idempotencyKey = key('link-replay');
        const first = await port.createPaymentLink(invoiceLink(), { idempotencyKey });
        expect((await port.createPaymentLink(invoiceLink(), { idempotencyKey })).id).toBe(first.id);
        const other = await rejection(port.createPaymentLink(invoiceLink({ amount: { value: '99.00', currency: 'EUR' } }), { idempotencyKey }));
        expect(other.mollie?.status).toBe(422);
        harness.advanceClock(24 * 3_600_000 + 1_000);
        expect((await port.createPaymentLink(invoiceLink({ expiresAt: undefined }), { idempotencyKey })).id).not.toBe(first.id);
      });

      it('lists the newest links first', async () => {
        const older = await port.createPaymentLink(invoiceLink({ description: 'Invoice LINKS-1' }), { idempotencyKey: key('links-1') });
        const newer = await port.createPaymentLink(invoiceLink({ description: 'Invoice LINKS-2' }), { idempotencyKey: key('links-2') });
        const ids = (await port.listRecentPaymentLinks(250)).map((link) => link.id);
        expect(ids.indexOf(newer.id)).toBeLessThan(ids.indexOf(older.id));
        expect(ids.indexOf(older.id)).toBeGreaterThanOrEqual(0);
        expect(await port.listRecentPaymentLinks(1)).toHaveLength(1);
      });

      it('lists every link and payment made since a time, page after page, and says when it stopped short', async () => {
        harness.advanceClock(60_000);
        const since = new Date(Date.parse((await port.createPaymentLink(invoiceLink({ description: 'first of many' }), { idempotencyKey: key('many-0') })).createdAt)).toISOString();
        for (let i = 1; i < 260; i += 1) {
          harness.advanceClock(1_000);
          await port.createPaymentLink(invoiceLink({ description: `many ${i}`, expiresAt: undefined }), { idempotencyKey: key(`many-${i}`) });
        }
        const all = await port.listPaymentLinksSince(since, 1_000);
        expect(all.complete).toBe(true);
        expect(all.items).toHaveLength(260);
        expect(all.items[0]!.description).toBe('many 259');
        expect(all.items.at(-1)!.description).toBe('first of many');
        const some = await port.listPaymentLinksSince(since, 100);
        expect(some).toMatchObject({ complete: false });
        expect(some.items).toHaveLength(100);
        const payments = await port.listPaymentsSince(since, 10);
        expect(payments.complete).toBe(true);
      });

      it('reports an unknown or malformed link id as not_found', async () => {
        expect(await rejection(port.getPaymentLink('pl_doesNotExist1'))).toMatchObject({ code: 'not_found', retryable: false });
        const malformed = await rejection(port.listPaymentLinkPayments('../payments'));
        expect(malformed.code).toBe('not_found');
        expect(malformed.message).toMatch(/pl_/);
        expect((await rejection(port.archivePaymentLink('tr_notALink1'))).code).toBe('not_found');
      });
    });

    it('counts a failed refund as refundable again', async () => {
      const { id } = await paidPayment('100.00');
      const refund = await port.createRefund(id, { amount: { value: '70.00', currency: 'EUR' } }, { idempotencyKey: key('fail') });
      harness.settleRefund(refund.id, 'failed');
      const payment = await port.getPayment(id);
      expect(payment.amountRemaining?.value).toBe('100.00');
      expect((await port.listRefunds(id))[0]?.status).toBe('failed');
    });
  });
}
