/**
 * The Mollie port: what the tools need from Mollie, in this server's own types. Two implementations keep the same
 * contract (test/mollie/port-contract.ts): the real one on @mollie/api-client and the offline simulator.
 */
import type { Amount } from './money.js';

export type MollieMode = 'test' | 'live';

export const PAYMENT_STATUSES = ['open', 'pending', 'authorized', 'paid', 'canceled', 'expired', 'failed'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** Once a payment reaches one of these, Mollie never changes its status again. */
export const FINAL_PAYMENT_STATUSES: ReadonlySet<PaymentStatus> = new Set(['paid', 'canceled', 'expired', 'failed']);

export function isFinalStatus(status: PaymentStatus): boolean {
  return FINAL_PAYMENT_STATUSES.has(status);
}

export const REFUND_STATUSES = ['queued', 'pending', 'processing', 'refunded', 'failed', 'canceled'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

export type Metadata = Record<string, string>;

export interface Payment {
  id: string;
  mode: MollieMode;
  status: PaymentStatus;
  isFinal: boolean;
  amount: Amount;
  /** Null until the payment is paid (Mollie omits it before). */
  amountRefunded: Amount | null;
  /** What can still be refunded; null until the payment is paid. */
  amountRemaining: Amount | null;
  description: string;
  method: string | null;
  /** Where the customer pays; only while the payment is open. */
  checkoutUrl: string | null;
  redirectUrl: string | null;
  webhookUrl: string | null;
  locale: string | null;
  metadata: Metadata | null;
  createdAt: string;
  paidAt: string | null;
  canceledAt: string | null;
  expiredAt: string | null;
  failedAt: string | null;
  expiresAt: string | null;
}

export interface Refund {
  id: string;
  paymentId: string;
  mode: MollieMode;
  status: RefundStatus;
  amount: Amount;
  description: string;
  metadata: Metadata | null;
  createdAt: string;
}

export interface CreatePaymentRequest {
  amount: Amount;
  description: string;
  redirectUrl?: string;
  webhookUrl?: string;
  locale?: string;
  metadata?: Metadata;
}

/**
 * A Mollie payment link (`pl_...`): stays payable until `expiresAt` (never when null) unless archived; the payment
 * (`tr_...`) exists only once the customer starts paying through it. Mollie gives a link no status and no metadata:
 * its status is derived from the link and its payments (src/payments/link-status.ts).
 */
export interface PaymentLink {
  id: string;
  mode: MollieMode;
  description: string;
  /** Null for a link where the customer chooses the amount; this server never makes one. */
  amount: Amount | null;
  archived: boolean;
  /** Single-use unless true: after one paid payment the link takes no more. */
  reusable: boolean;
  redirectUrl: string | null;
  webhookUrl: string | null;
  createdAt: string;
  paidAt: string | null;
  expiresAt: string | null;
  /** What the customer opens: Mollie's `_links.paymentLink`. Its host is Mollie's to choose. */
  url: string;
}

export interface CreatePaymentLinkRequest {
  amount: Amount;
  description: string;
  /** ISO 8601; absent: the link never expires. */
  expiresAt?: string;
  redirectUrl?: string;
  webhookUrl?: string;
}

export interface CreateRefundRequest {
  amount: Amount;
  description?: string;
  metadata?: Metadata;
}

/**
 * Every write carries a key chosen by the caller, so a retry (ours, the client's, or the caller's after a crash)
 * can never move money twice.
 */
export interface WriteOptions {
  idempotencyKey: string;
}

export interface MolliePort {
  /** 'mollie' talks to Mollie's API; 'simulator' is the offline stand-in. */
  readonly kind: 'mollie' | 'simulator';
  readonly mode: MollieMode;
  createPayment(request: CreatePaymentRequest, options: WriteOptions): Promise<Payment>;
  getPayment(paymentId: string): Promise<Payment>;
  cancelPayment(paymentId: string, options: WriteOptions): Promise<Payment>;
  createRefund(paymentId: string, request: CreateRefundRequest, options: WriteOptions): Promise<Refund>;
  listRefunds(paymentId: string): Promise<Refund[]>;
  /** The newest payments of the account, newest first, at most `limit` (1-250): one page, for finding what happened. */
  listRecentPayments(limit: number): Promise<Payment[]>;
  createPaymentLink(request: CreatePaymentLinkRequest, options: WriteOptions): Promise<PaymentLink>;
  getPaymentLink(linkId: string): Promise<PaymentLink>;
  /** The payments customers started through the link (Mollie's full payment objects, without metadata). */
  listPaymentLinkPayments(linkId: string): Promise<Payment[]>;
  /** `PATCH archived: true`: no payment can be completed through the link any more. Archiving twice is harmless. */
  archivePaymentLink(linkId: string): Promise<PaymentLink>;
  /** The newest payment links of the account, newest first, at most `limit` (1-250). */
  listRecentPaymentLinks(limit: number): Promise<PaymentLink[]>;
  /**
   * Every payment link made since `since`, newest first, page after page, at most `max`; `complete` is false when
   * there were more. For finding a link whose creation's answer was lost, once Mollie has forgotten its key.
   */
  listPaymentLinksSince(since: string, max: number): Promise<Listed<PaymentLink>>;
  /** The same for payments. */
  listPaymentsSince(since: string, max: number): Promise<Listed<Payment>>;
}

export interface Listed<T> {
  items: T[];
  complete: boolean;
}

const RESOURCE_ID = { payment: /^tr_[A-Za-z0-9]{1,64}$/, refund: /^re_[A-Za-z0-9]{1,64}$/, paymentLink: /^pl_[A-Za-z0-9]{1,64}$/ } as const;

export type ResourceKind = keyof typeof RESOURCE_ID;

/** Mollie ids have a fixed shape; anything else cannot exist, so both implementations refuse it before any request. */
export function isResourceId(kind: ResourceKind, id: unknown): id is string {
  return typeof id === 'string' && RESOURCE_ID[kind].test(id);
}
