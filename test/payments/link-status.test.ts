import { describe, expect, it } from 'vitest';
import type { Payment, PaymentLink } from '../../src/mollie/port.js';
import { deriveLinkState } from '../../src/payments/link-status.js';

const NOW = new Date('2026-12-01T12:00:00Z');
const link = (overrides: Partial<PaymentLink> = {}): PaymentLink => ({
  id: 'pl_test1',
  mode: 'test',
  description: 'Invoice 1',
  amount: { value: '10.00', currency: 'EUR' },
  archived: false,
  reusable: false,
  redirectUrl: null,
  webhookUrl: null,
  createdAt: '2026-11-01T12:00:00Z',
  paidAt: null,
  expiresAt: '2026-12-31T23:59:59Z',
  url: 'https://payment-links.mollie.com/payment/test1',
  ...overrides,
});
const payment = (id: string, status: Payment['status'], createdAt: string): Payment =>
  ({ id, status, createdAt, paidAt: status === 'paid' ? createdAt : null }) as Payment;

describe('the status of a payment link, derived from the link and its payments', () => {
  it('is open while payable, and names the latest attempt', () => {
    expect(deriveLinkState(link(), [], NOW)).toEqual({ status: 'open', payment: null, paidAt: null });
    const failed = payment('tr_a', 'failed', '2026-11-02T10:00:00Z');
    const open = payment('tr_b', 'open', '2026-11-03T10:00:00Z');
    expect(deriveLinkState(link(), [failed, open], NOW)).toMatchObject({ status: 'open', payment: { id: 'tr_b' } });
  });

  it('paid wins over everything: archived, expired, a later failed attempt', () => {
    const paid = payment('tr_p', 'paid', '2026-11-05T10:00:00Z');
    const later = payment('tr_f', 'failed', '2026-11-06T10:00:00Z');
    expect(deriveLinkState(link({ archived: true, expiresAt: '2026-11-10T00:00:00Z' }), [later, paid], NOW)).toEqual({ status: 'paid', payment: paid, paidAt: paid.paidAt });
  });

  it('pending or authorized comes next, even when archived meanwhile', () => {
    const pending = payment('tr_q', 'pending', '2026-11-05T10:00:00Z');
    expect(deriveLinkState(link({ archived: true }), [pending], NOW)).toMatchObject({ status: 'pending', payment: { id: 'tr_q' } });
    expect(deriveLinkState(link(), [payment('tr_r', 'authorized', '2026-11-05T10:00:00Z')], NOW).status).toBe('pending');
  });

  it('canceled when archived, expired when past its expiry, and a link without expiry never expires', () => {
    expect(deriveLinkState(link({ archived: true, expiresAt: '2026-11-10T00:00:00Z' }), [], NOW).status).toBe('canceled');
    expect(deriveLinkState(link({ expiresAt: '2026-12-01T12:00:00Z' }), [], NOW).status).toBe('expired');
    expect(deriveLinkState(link({ expiresAt: '2026-12-01T12:00:01Z' }), [], NOW).status).toBe('open');
    expect(deriveLinkState(link({ expiresAt: null }), [], new Date('2099-01-01T00:00:00Z')).status).toBe('open');
  });
});
