/**
 * Mollie gives a payment link no status, and a payment made through it no pointer back to it. The status is derived
 * here, the same everywhere (DESIGN.md): paid when a payment through it is paid; pending while one is pending or
 * authorized; canceled when archived; expired when past its expiresAt; otherwise open.
 *
 * One addition: an archived or expired link through which a payment is still open (a customer who started paying
 * before the end, by a method that stays open for days, such as a bank transfer) is pending, not canceled or expired:
 * that payment can still complete, so the link is neither final nor safe to replace.
 */
import type { Payment, PaymentLink } from '../mollie/port.js';

export const LINK_STATUSES = ['open', 'pending', 'paid', 'canceled', 'expired'] as const;
export type LinkStatus = (typeof LINK_STATUSES)[number];

export interface DerivedLinkState {
  status: LinkStatus;
  /** The payment that paid it, else one under way, else the latest attempt; null before any. */
  payment: Payment | null;
  paidAt: string | null;
}

const UNDER_WAY = new Set(['pending', 'authorized']);

/** `payments` as Mollie lists them (any order). */
export function deriveLinkState(link: PaymentLink, payments: readonly Payment[], now: Date): DerivedLinkState {
  const newestFirst = [...payments].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const paid = newestFirst.find((payment) => payment.status === 'paid');
  if (paid) return { status: 'paid', payment: paid, paidAt: link.paidAt ?? paid.paidAt };
  const underWay = newestFirst.find((payment) => UNDER_WAY.has(payment.status));
  if (underWay) return { status: 'pending', payment: underWay, paidAt: null };
  const latest = newestFirst[0] ?? null;
  const ended = link.archived || (link.expiresAt !== null && now.getTime() >= Date.parse(link.expiresAt));
  const stillOpen = newestFirst.find((payment) => payment.status === 'open');
  if (ended && stillOpen) return { status: 'pending', payment: stillOpen, paidAt: null };
  if (link.archived) return { status: 'canceled', payment: latest, paidAt: null };
  if (link.expiresAt !== null && now.getTime() >= Date.parse(link.expiresAt)) return { status: 'expired', payment: latest, paidAt: null };
  return { status: 'open', payment: latest, paidAt: null };
}

/** No status a link can reach from these but paid (a payment started before the end may still complete). */
export function isFinalLinkStatus(status: LinkStatus): boolean {
  return status === 'paid' || status === 'canceled' || status === 'expired';
}
