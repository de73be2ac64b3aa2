/**
 * An offline Mollie: the same port, in process, with Mollie's semantics, so anyone can try every tool without a
 * Mollie account, and tests can play the customer. It is also the model behind the https test double of Mollie's
 * API, so the shared contract suite holds both implementations to one set of expectations.
 *
 * What it models: tr_/re_/pl_ ids; open payments with a checkout URL and an expiry; the final statuses; amountRefunded
 * and amountRemaining; partial and multiple refunds; payment links that stay payable until their expiry, create a
 * payment (without metadata, with no pointer back to the link) when the customer pays through them, take one paid
 * payment unless reusable, and refuse payment once archived or expired; Mollie's 422s for refunds over the remainder
 * or on unpaid payments, invalid amounts or webhook URLs, a link expiring in the past, metadata on a link, a PATCH of a
 * field Mollie does not let change; Idempotency-Key replay for 24 hours; an injectable clock.
 */
import { randomBytes } from '../crypto-on-demand.js';
import { errorFromMollieProblem, malformedIdError, MollieError } from './errors.js';
import { amountToMinorUnits, formatMinorUnits, isMollieCurrency, MOLLIE_CURRENCIES, parseAmount, toAmount, type Amount } from './money.js';
import {
  isFinalStatus,
  isResourceId,
  type CreatePaymentLinkRequest,
  type CreatePaymentRequest,
  type CreateRefundRequest,
  type Listed,
  type MollieMode,
  type MolliePort,
  type Payment,
  type PaymentLink,
  type PaymentStatus,
  type Refund,
  type RefundStatus,
  type WriteOptions,
} from './port.js';
import { IDEMPOTENCY_WINDOW_MS, MemorySimulatorState, type SimulatorState, type StoredLink, type StoredPayment } from './simulator-state.js';

/** What the simulated customer (or time) does to an open payment. */
export type CustomerOutcome = 'paid' | 'failed' | 'canceled' | 'expired';

/** What a customer can leave a payment made through a link in: finished, or still under way. */
export type LinkPaymentOutcome = Exclude<CustomerOutcome, 'expired'> | 'open' | 'pending';


/** What Mollie lets a PATCH of a payment link change; anything else is a 422 naming the field. */
const LINK_UPDATABLE = new Set(['description', 'minimumAmount', 'archived', 'allowedMethods', 'lines', 'billingAddress', 'shippingAddress']);
const LINK_CREATABLE = new Set([
  'description', 'amount', 'minimumAmount', 'redirectUrl', 'webhookUrl', 'lines', 'billingAddress', 'shippingAddress', 'reusable',
  'expiresAt', 'allowedMethods', 'sequenceType', 'customerId', 'applicationFee',
]);

export interface SimulatorOptions {
  mode?: MollieMode;
  /** The clock; tests move it to make payments expire. */
  now?: () => Date;
  /** How long an open payment stays payable. */
  expiresAfterMs?: number;
  /** Checkout links are this plus the payment id; a function when it is known only once the server listens. */
  checkoutBaseUrl?: string | (() => string);
  /** Real Mollie requires a redirectUrl for these payments; the offline demo does not need one. */
  requireRedirectUrl?: boolean;
  /** The payment method a simulated customer pays with. */
  paymentMethod?: string;
  /** Where payments, links and refunds are kept: in memory unless given (the server's database file). */
  state?: SimulatorState;
  /** A pending refund becomes refunded this long after it was made, as Mollie settles it; null: only settleRefund(). */
  refundSettlesAfterMs?: number | null;
}

export const SIMULATOR_CHECKOUT_BASE_URL = 'https://checkout.simulator.invalid/pay/';
const DEFAULT_EXPIRY_MS = 15 * 60 * 1000;
const MAX_DESCRIPTION = 255;

export class MollieSimulator implements MolliePort {
  readonly kind = 'simulator' as const;
  readonly mode: MollieMode;
  private readonly now: () => Date;
  private readonly expiresAfterMs: number;
  private readonly checkoutBaseUrl: () => string;
  private readonly requireRedirectUrl: boolean;
  private readonly paymentMethod: string;
  private readonly state: SimulatorState;
  private readonly refundSettlesAfterMs: number | null;

  constructor(options: SimulatorOptions = {}) {
    this.mode = options.mode ?? 'test';
    this.now = options.now ?? (() => new Date());
    this.expiresAfterMs = options.expiresAfterMs ?? DEFAULT_EXPIRY_MS;
    const base = options.checkoutBaseUrl ?? SIMULATOR_CHECKOUT_BASE_URL;
    this.checkoutBaseUrl = typeof base === 'function' ? base : () => base;
    this.requireRedirectUrl = options.requireRedirectUrl ?? false;
    this.paymentMethod = options.paymentMethod ?? 'ideal';
    this.state = options.state ?? new MemorySimulatorState();
    this.refundSettlesAfterMs = options.refundSettlesAfterMs ?? null;
  }

  /** One operation on the saved state: all of it is kept, or none of it when it throws. */
  private atomically<T>(work: () => T): T {
    return this.state.atomically(work);
  }

  /** What Mollie would answer: a copy, with the checkout URL of the page serving now (saved state outlives ports). */
  private present<T extends Payment | Refund | PaymentLink>(value: T): T {
    const shown = copy(value);
    if (shown.id.startsWith('tr_')) {
      const payment = shown as Payment;
      if (payment.checkoutUrl !== null) payment.checkoutUrl = `${this.checkoutBaseUrl()}${payment.id}`;
    } else if (shown.id.startsWith('pl_')) {
      (shown as PaymentLink).url = `${this.checkoutBaseUrl()}${shown.id}`;
    }
    return shown;
  }

  async createPayment(request: CreatePaymentRequest, options: WriteOptions): Promise<Payment> {
    return this.idempotently(options.idempotencyKey, ['create payment', request], () => {
      this.validatePayment(request);
      return this.newPayment(request, null);
    });
  }

  private newPayment(request: CreatePaymentRequest, linkId: string | null): Payment {
    const createdAt = this.now();
    const id = newId('tr_');
    const payment: Payment = {
      id,
      mode: this.mode,
      status: 'open',
      isFinal: false,
      amount: { value: request.amount.value, currency: request.amount.currency },
      amountRefunded: null,
      amountRemaining: null,
      description: request.description,
      method: null,
      checkoutUrl: `${this.checkoutBaseUrl()}${id}`,
      redirectUrl: request.redirectUrl ?? null,
      webhookUrl: request.webhookUrl ?? null,
      locale: request.locale ?? null,
      metadata: request.metadata ? { ...request.metadata } : null,
      createdAt: createdAt.toISOString(),
      paidAt: null,
      canceledAt: null,
      expiredAt: null,
      failedAt: null,
      expiresAt: new Date(createdAt.getTime() + this.expiresAfterMs).toISOString(),
    };
    this.state.addPayment({ payment, refunds: [], linkId });
    return payment;
  }

  async getPayment(paymentId: string): Promise<Payment> {
    return this.atomically(() => this.present(this.stored(paymentId).payment));
  }

  async cancelPayment(paymentId: string, options: WriteOptions): Promise<Payment> {
    return this.idempotently(options.idempotencyKey, ['cancel payment', paymentId], () => {
      const stored = this.stored(paymentId);
      if (stored.payment.status !== 'open') {
        throw unprocessable(`The payment cannot be canceled: its status is ${stored.payment.status}.`);
      }
      this.settle(stored.payment, 'canceled');
      return stored.payment;
    });
  }

  async createRefund(paymentId: string, request: CreateRefundRequest, options: WriteOptions): Promise<Refund> {
    return this.idempotently(options.idempotencyKey, ['create refund', paymentId, request], () => {
      const stored = this.stored(paymentId);
      const { payment } = stored;
      if (payment.status !== 'paid') {
        throw unprocessable(`The payment cannot be refunded: its status is ${payment.status}, and only paid payments can be refunded.`);
      }
      if (request.amount.currency !== payment.amount.currency) {
        throw unprocessable(`The refund currency must be the payment's currency, ${payment.amount.currency}.`, 'amount.currency');
      }
      const minor = validAmount(request.amount, 'amount');
      const remaining = amountToMinorUnits(payment.amountRemaining!);
      if (minor > remaining) {
        throw unprocessable(
          `The amount is higher than the amount remaining on the payment (${payment.amountRemaining!.value} ${payment.amountRemaining!.currency}).`,
          'amount',
        );
      }
      if (request.description !== undefined && request.description.length > MAX_DESCRIPTION) {
        throw unprocessable(`The description must be at most ${MAX_DESCRIPTION} characters.`, 'description');
      }
      const refund: Refund = {
        id: newId('re_'),
        paymentId,
        mode: this.mode,
        status: 'pending',
        amount: { value: request.amount.value, currency: request.amount.currency },
        description: request.description ?? '',
        metadata: request.metadata ? { ...request.metadata } : null,
        createdAt: this.now().toISOString(),
      };
      stored.refunds.push(refund);
      this.state.addRefund(refund.id, paymentId);
      this.recountRefunds(stored);
      return refund;
    });
  }

  async listRefunds(paymentId: string): Promise<Refund[]> {
    // Mollie lists newest first.
    return this.atomically(() => this.stored(paymentId).refunds.map(copy).reverse());
  }

  async listRecentPayments(limit: number): Promise<Payment[]> {
    return this.atomically(() => this.state.paymentIds(0, Math.max(1, Math.min(250, limit))).map((id) => this.present(this.stored(id).payment)));
  }

  async createPaymentLink(request: CreatePaymentLinkRequest, options: WriteOptions): Promise<PaymentLink> {
    return this.idempotently(options.idempotencyKey, ['create payment link', request], () => {
      this.validateLink(request as unknown as Record<string, unknown>);
      const id = newId('pl_');
      const link: PaymentLink = {
        id,
        mode: this.mode,
        description: request.description,
        amount: { value: request.amount.value, currency: request.amount.currency },
        archived: false,
        reusable: (request as { reusable?: unknown }).reusable === true,
        redirectUrl: request.redirectUrl ?? null,
        webhookUrl: request.webhookUrl ?? null,
        createdAt: this.now().toISOString(),
        paidAt: null,
        expiresAt: request.expiresAt === undefined ? null : new Date(Date.parse(request.expiresAt)).toISOString(),
        url: `${this.checkoutBaseUrl()}${id}`,
      };
      this.state.addLink({ link, paymentIds: [] });
      return link;
    });
  }

  async getPaymentLink(linkId: string): Promise<PaymentLink> {
    return this.atomically(() => this.present(this.storedLink(linkId).link));
  }

  async listPaymentLinkPayments(linkId: string): Promise<Payment[]> {
    // Newest first, as Mollie lists.
    return this.atomically(() => this.storedLink(linkId).paymentIds.map((id) => this.present(this.stored(id).payment)).reverse());
  }

  async archivePaymentLink(linkId: string): Promise<PaymentLink> {
    return this.updatePaymentLink(linkId, { archived: true });
  }

  /** Mollie's PATCH /v2/payment-links/{id}: only some fields may change; amount, expiry and URLs are fixed. */
  updatePaymentLink(linkId: string, changes: Record<string, unknown>): PaymentLink {
    return this.atomically(() => this.changeLink(linkId, changes));
  }

  private changeLink(linkId: string, changes: Record<string, unknown>): PaymentLink {
    const stored = this.storedLink(linkId);
    const fields = Object.keys(changes);
    if (fields.length === 0) throw unprocessable('At least one body parameter must be provided.');
    const fixed = fields.find((field) => !LINK_UPDATABLE.has(field));
    if (fixed !== undefined) throw unprocessable(`The field ${fixed} cannot be updated on a payment link.`, fixed);
    if (changes.archived !== undefined) {
      if (typeof changes.archived !== 'boolean') throw unprocessable('The archived field must be a boolean.', 'archived');
      stored.link.archived = changes.archived;
    }
    if (changes.description !== undefined) {
      if (typeof changes.description !== 'string' || changes.description.trim() === '' || changes.description.length > MAX_DESCRIPTION) {
        throw unprocessable(`The description must be 1 to ${MAX_DESCRIPTION} characters.`, 'description');
      }
      stored.link.description = changes.description;
    }
    return this.present(stored.link);
  }

  /** Mollie's DELETE /v2/payment-links/{id}: only a link no payment was ever started through. */
  deletePaymentLink(linkId: string): void {
    this.atomically(() => {
      const stored = this.storedLink(linkId);
      if (stored.paymentIds.length > 0) throw unprocessable('Payment link cannot be deleted.');
      this.state.removeLink(linkId);
    });
  }

  async listRecentPaymentLinks(limit: number): Promise<PaymentLink[]> {
    return this.atomically(() => this.state.linkIds(0, Math.max(1, Math.min(250, limit))).map((id) => this.present(this.storedLink(id).link)));
  }

  async listPaymentLinksSince(since: string, max: number): Promise<Listed<PaymentLink>> {
    return this.atomically(() => {
      const ids = this.state.linkIds(Date.parse(since), max + 1);
      return { items: ids.slice(0, max).map((id) => this.present(this.storedLink(id).link)), complete: ids.length <= max };
    });
  }

  async listPaymentsSince(since: string, max: number): Promise<Listed<Payment>> {
    return this.atomically(() => {
      const ids = this.state.paymentIds(Date.parse(since), max + 1);
      return { items: ids.slice(0, max).map((id) => this.present(this.stored(id).payment)), complete: ids.length <= max };
    });
  }

  /** The simulator's clock, for pages that show its links as their customer sees them. */
  currentTime(): Date {
    return this.now();
  }

  /** Whether a customer could pay through the link now, and if not, why not. */
  linkRefusal(linkId: string): string | null {
    return this.atomically(() => this.refusalOf(linkId));
  }

  private refusalOf(linkId: string): string | null {
    const { link, paymentIds } = this.storedLink(linkId);
    if (link.archived) return 'This payment link was withdrawn by the merchant.';
    if (link.expiresAt !== null && this.now().getTime() >= Date.parse(link.expiresAt)) return 'This payment link has expired.';
    const statuses = paymentIds.map((id) => this.stored(id).payment.status);
    if (!link.reusable && statuses.includes('paid')) return 'This payment link has already been paid.';
    if (statuses.some((status) => status === 'pending' || status === 'authorized')) return 'A payment through this link is already being processed.';
    return null;
  }

  /**
   * Plays the customer on the link's page: a payment is made through the link, as Mollie makes one when the customer
   * picks a method, and left open, pending, or finished as paid, failed or canceled.
   */
  payThroughLink(linkId: string, outcome: LinkPaymentOutcome): Payment {
    return this.atomically(() => this.payLink(linkId, outcome));
  }

  private payLink(linkId: string, outcome: LinkPaymentOutcome): Payment {
    const refusal = this.refusalOf(linkId);
    if (refusal !== null) throw new Error(`${linkId}: ${refusal}`);
    const stored = this.storedLink(linkId);
    const { link } = stored;
    const payment = this.newPayment(
      {
        amount: link.amount!,
        description: link.description,
        ...(link.redirectUrl !== null ? { redirectUrl: link.redirectUrl } : {}),
        ...(link.webhookUrl !== null ? { webhookUrl: link.webhookUrl } : {}),
      },
      linkId,
    );
    stored.paymentIds.push(payment.id);
    if (outcome === 'pending') {
      payment.status = 'pending';
      payment.method = this.paymentMethod;
      payment.checkoutUrl = null;
    } else if (outcome !== 'open') {
      this.finish(payment, outcome);
    }
    return this.present(payment);
  }

  /** Time runs out for the link: its expiry is now. */
  expireLink(linkId: string): PaymentLink {
    return this.atomically(() => {
      const { link } = this.storedLink(linkId);
      link.expiresAt = this.now().toISOString();
      return this.present(link);
    });
  }

  /** The link a payment was made through (Mollie knows; its API does not say), for the simulator's own pages. */
  linkOf(paymentId: string): string | null {
    return this.atomically(() => this.state.payment(paymentId)?.linkId ?? null);
  }

  /** Plays the customer (or the clock): an open or pending payment becomes paid, failed, canceled or expired. */
  simulate(paymentId: string, outcome: CustomerOutcome): Payment {
    return this.atomically(() => {
      const stored = this.stored(paymentId);
      const { status } = stored.payment;
      if (status !== 'open' && status !== 'pending' && status !== 'authorized') {
        throw new Error(`Payment ${paymentId} is ${status}, not open: only an open or pending payment can become ${outcome}.`);
      }
      this.finish(stored.payment, outcome);
      return this.present(stored.payment);
    });
  }

  private finish(payment: Payment, outcome: CustomerOutcome): void {
    this.settle(payment, outcome);
    const linkId = this.state.payment(payment.id)?.linkId ?? null;
    if (outcome === 'paid' && linkId !== null) {
      const { link } = this.storedLink(linkId);
      link.paidAt ??= payment.paidAt;
    }
  }

  /** Mollie settles a refund later: it is refunded, or it fails and the money counts as refundable again. */
  settleRefund(refundId: string, status: Extract<RefundStatus, 'refunded' | 'failed'>): Refund {
    return this.atomically(() => {
      const paymentId = this.state.refundOwner(refundId);
      if (!paymentId) throw new Error(`There is no refund ${refundId}.`);
      const stored = this.stored(paymentId);
      const refund = stored.refunds.find((candidate) => candidate.id === refundId)!;
      if (refund.status !== 'pending' && refund.status !== 'queued' && refund.status !== 'processing') {
        throw new Error(`Refund ${refundId} is already ${refund.status}.`);
      }
      refund.status = status;
      this.recountRefunds(stored);
      return copy(refund);
    });
  }

  // ---- internals

  private storedLink(linkId: string): StoredLink {
    if (!isResourceId('paymentLink', linkId)) throw malformedIdError('paymentLink', linkId);
    const stored = this.state.link(linkId);
    if (!stored) {
      throw errorFromMollieProblem({ status: 404, title: 'Not Found', detail: `No payment link exists with token ${linkId}.`, field: null });
    }
    return stored;
  }

  /**
   * The stored payment, with the clock applied: an open payment past its expiry is expired, and a pending refund old
   * enough is refunded.
   */
  private stored(paymentId: string): StoredPayment {
    if (!isResourceId('payment', paymentId)) throw malformedIdError('payment', paymentId);
    const stored = this.state.payment(paymentId);
    if (!stored) {
      throw errorFromMollieProblem({ status: 404, title: 'Not Found', detail: `No payment exists with token ${paymentId}.`, field: null });
    }
    const { payment } = stored;
    if (payment.status === 'open' && payment.expiresAt && this.now().getTime() >= Date.parse(payment.expiresAt)) {
      this.settle(payment, 'expired', new Date(payment.expiresAt));
    }
    if (this.refundSettlesAfterMs !== null) {
      const now = this.now().getTime();
      for (const refund of stored.refunds) {
        if (refund.status === 'pending' && now >= Date.parse(refund.createdAt) + this.refundSettlesAfterMs) refund.status = 'refunded';
      }
    }
    return stored;
  }

  private settle(payment: Payment, status: Exclude<PaymentStatus, 'open' | 'pending' | 'authorized'>, at = this.now()): void {
    const stamp = at.toISOString();
    payment.status = status;
    payment.isFinal = isFinalStatus(status);
    payment.checkoutUrl = null;
    if (status === 'paid') {
      payment.paidAt = stamp;
      payment.method = this.paymentMethod;
      payment.amountRefunded = toAmount(0, payment.amount.currency);
      payment.amountRemaining = { ...payment.amount };
      payment.expiresAt = null;
    } else if (status === 'canceled') {
      payment.canceledAt = stamp;
    } else if (status === 'expired') {
      payment.expiredAt = stamp;
    } else {
      payment.failedAt = stamp;
      payment.method = this.paymentMethod;
    }
  }

  /** amountRefunded counts every refund that has not failed or been canceled, pending ones included, as Mollie does. */
  private recountRefunds(stored: StoredPayment): void {
    const { payment } = stored;
    const currency = payment.amount.currency;
    const refunded = stored.refunds
      .filter((refund) => refund.status !== 'failed' && refund.status !== 'canceled')
      .reduce((sum, refund) => sum + amountToMinorUnits(refund.amount), 0);
    payment.amountRefunded = toAmount(refunded, currency);
    payment.amountRemaining = toAmount(amountToMinorUnits(payment.amount) - refunded, currency);
  }

  private validatePayment(request: CreatePaymentRequest, redirectRequired = this.requireRedirectUrl): void {
    validAmount(request.amount, 'amount');
    if (typeof request.description !== 'string' || request.description.trim() === '') {
      throw unprocessable('The description is required.', 'description');
    }
    if (request.description.length > MAX_DESCRIPTION) {
      throw unprocessable(`The description must be at most ${MAX_DESCRIPTION} characters.`, 'description');
    }
    if (request.redirectUrl === undefined) {
      if (redirectRequired) throw unprocessable('The redirect URL is required for this payment.', 'redirectUrl');
    } else if (!isPublicUrl(request.redirectUrl, { allowLocal: true })) {
      throw unprocessable('The redirect URL is invalid.', 'redirectUrl');
    }
    if (request.webhookUrl !== undefined && !isPublicUrl(request.webhookUrl, { allowLocal: false })) {
      throw unprocessable("The webhook URL is invalid because it is unreachable from Mollie's point of view.", 'webhookUrl');
    }
  }

  /** A link request as Mollie checks it: what it accepts, a real amount, an expiry in the future, reachable URLs. */
  private validateLink(request: Record<string, unknown>): void {
    const unknown = Object.keys(request).find((field) => !LINK_CREATABLE.has(field));
    if (unknown !== undefined) throw unprocessable(`The field ${unknown} is not supported for payment links.`, unknown);
    if (request.amount === undefined || request.amount === null) {
      // Mollie lets the customer choose the amount then; the simulator models only links with an amount.
      throw unprocessable('The simulator only models payment links with an amount.', 'amount');
    }
    // Unlike a payment, a link needs no redirect URL: Mollie shows the customer its own page after paying.
    this.validatePayment(request as unknown as CreatePaymentRequest, false);
    if (request.expiresAt !== undefined && request.expiresAt !== null) {
      const at = typeof request.expiresAt === 'string' ? Date.parse(request.expiresAt) : Number.NaN;
      if (Number.isNaN(at)) throw unprocessable('The expiry date is invalid.', 'expiresAt');
      if (at <= this.now().getTime()) throw unprocessable('The expiry date must be in the future.', 'expiresAt');
    }
  }

  /**
   * Mollie's Idempotency-Key semantics: the same key with the same request replays the first answer (not the
   * current state) for 24 hours, after which the key is new again; the same key with a different request is refused.
   */
  private idempotently<T extends Payment | Refund | PaymentLink>(key: string, request: unknown[], run: () => T): T {
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
      throw new Error('Every write to the simulator needs an idempotency key of 1 to 255 characters.');
    }
    const fingerprint = JSON.stringify(request);
    return this.atomically(() => {
      const now = this.now().getTime();
      const earlier = this.state.reply(key);
      if (earlier && now - earlier.at < IDEMPOTENCY_WINDOW_MS) {
        if (earlier.fingerprint !== fingerprint) {
          throw unprocessable('The Idempotency-Key was already used for a different request.', null);
        }
        return this.present(earlier.reply as T);
      }
      const reply = copy(run());
      this.state.putReply(key, { fingerprint, reply, at: now });
      return this.present(reply);
    });
  }
}

function validAmount(amount: Amount, field: string): number {
  if (!amount || typeof amount.value !== 'string' || !isMollieCurrency(amount.currency)) {
    throw unprocessable(`The currency is not supported; use one of ${Object.keys(MOLLIE_CURRENCIES).join(', ')}.`, `${field}.currency`);
  }
  // Mollie wants exactly the currency's decimals ("10.00", JPY "1000"): only the canonical form is accepted.
  let minor: number;
  try {
    minor = parseAmount(amount.value, amount.currency, { allowZero: true });
  } catch {
    minor = -1;
  }
  if (minor < 0 || formatMinorUnits(minor, amount.currency) !== amount.value) {
    throw unprocessable(
      `The amount contains an invalid value: ${amount.currency} needs exactly ${MOLLIE_CURRENCIES[amount.currency]} decimals.`,
      `${field}.value`,
    );
  }
  if (minor === 0) throw unprocessable('The amount must be more than zero.', field);
  return minor;
}

function isPublicUrl(raw: string, { allowLocal }: { allowLocal: boolean }): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
  if (allowLocal) return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1' || host === '0.0.0.0');
}

function unprocessable(detail: string, field: string | null = null): MollieError {
  return errorFromMollieProblem({ status: 422, title: 'Unprocessable Entity', detail, field });
}

function newId(prefix: 'tr_' | 're_' | 'pl_'): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(10);
  let id = prefix;
  for (const byte of bytes) id += alphabet[byte % alphabet.length];
  return id;
}

function copy<T>(value: T): T {
  return structuredClone(value);
}
