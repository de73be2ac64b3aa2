/**
 * What a customer can pay an invoice with: the payment links and checkouts this server made for it, read fresh from
 * Mollie, and the two writes that change them (withdrawing one, completing a creation left unfinished). The tools
 * create_invoice_payment, get_payment_status and cancel_invoice_payment, the webhook and start-up reconciliation all
 * see an invoice through this one module.
 */
import { createHash } from '../crypto-on-demand.js';
import { MollieError } from '../mollie/errors.js';
import type { Amount } from '../mollie/money.js';
import { isFinalStatus, type CreatePaymentLinkRequest, type CreatePaymentRequest, type Listed, type MolliePort, type Payment, type PaymentLink, type PaymentStatus } from '../mollie/port.js';
import { ToolError } from '../tool-error.js';
import type { PaymentKind, PendingCreation } from './invoice-locks.js';
import { deriveLinkState, isFinalLinkStatus, type DerivedLinkState } from './link-status.js';
import type { LinkRecord, PaymentRecord, PaymentRecords } from './payment-records.js';

export interface InvoicePayment {
  kind: PaymentKind;
  /** `pl_...` for a link, null for a checkout. */
  linkId: string | null;
  /** The checkout's `tr_...`; for a link, the payment that paid it, else the latest attempt, else null. */
  paymentId: string | null;
  amount: Amount;
  /** Mollie's for a checkout; derived for a link (link-status.ts). */
  status: PaymentStatus;
  /** What the customer opens, while it can be paid. */
  url: string | null;
  expiresAt: string | null;
  paidAt: string | null;
  createdAt: string;
  invoiceId: string;
  /** The agent that made it. */
  agent: string;
}

export interface InvoiceContext {
  mollie: MolliePort;
  payments: PaymentRecords;
  clock: () => Date;
}

/** Payable now: a customer opening it could pay. */
export function isPayable(item: InvoicePayment): boolean {
  return item.status === 'open';
}

/** Money on its way through it: a payment pending or authorized. */
export function isUnderWay(item: InvoicePayment): boolean {
  return item.status === 'pending' || item.status === 'authorized';
}

export function describeItem(item: InvoicePayment): string {
  return item.kind === 'payment_link'
    ? `payment link ${item.linkId}${item.paymentId ? ` (payment ${item.paymentId})` : ''}`
    : `checkout ${item.paymentId}`;
}

function fromCheckout(record: Pick<PaymentRecord, 'paymentId' | 'amount' | 'status' | 'checkoutUrl' | 'expiresAt' | 'paidAt' | 'createdAt' | 'invoiceId' | 'agent'>): InvoicePayment {
  return {
    kind: 'checkout',
    linkId: null,
    paymentId: record.paymentId,
    amount: record.amount,
    status: record.status,
    url: record.status === 'open' ? record.checkoutUrl : null,
    expiresAt: record.expiresAt,
    paidAt: record.paidAt,
    createdAt: record.createdAt,
    invoiceId: record.invoiceId,
    agent: record.agent,
  };
}

function fromLink(record: LinkRecord): InvoicePayment {
  return {
    kind: 'payment_link',
    linkId: record.linkId,
    paymentId: record.paymentId,
    amount: record.amount,
    status: record.status,
    url: record.status === 'open' ? record.url : null,
    expiresAt: record.expiresAt,
    paidAt: record.paidAt,
    createdAt: record.createdAt,
    invoiceId: record.invoiceId,
    agent: record.agent,
  };
}

/** As last recorded, without asking Mollie: oldest first. */
export function recordedInvoice(records: PaymentRecords, invoiceId: string, mode: Payment['mode']): InvoicePayment[] {
  return [...records.forInvoice(invoiceId, mode).map(fromCheckout), ...records.linksForInvoice(invoiceId, mode).map(fromLink)].sort((a, b) =>
    a.createdAt.localeCompare(b.createdAt),
  );
}

export interface LinkReading {
  link: PaymentLink;
  payments: Payment[];
  state: DerivedLinkState;
}

/** A link and its payments from Mollie, its status derived; written back when this server made it. */
export async function readLink(context: InvoiceContext, linkId: string): Promise<LinkReading> {
  const link = await context.mollie.getPaymentLink(linkId);
  const payments = await context.mollie.listPaymentLinkPayments(linkId);
  const state = deriveLinkState(link, payments, context.clock());
  const record = context.payments.getLink(linkId);
  if (record) context.payments.refreshLink(record, link, payments, { status: state.status, paymentId: state.payment?.id ?? null, paidAt: state.paidAt });
  return { link, payments, state };
}

export function itemFromReading(record: LinkRecord, reading: LinkReading): InvoicePayment {
  return fromLink({
    ...record,
    status: reading.state.status,
    url: reading.link.url,
    archived: reading.link.archived,
    paymentId: reading.state.payment?.id ?? null,
    paidAt: reading.state.paidAt,
    expiresAt: reading.link.expiresAt,
  });
}

/**
 * Everything this server made for the invoice, brought up to date with Mollie where it could still change, oldest
 * first. A link or payment Mollie no longer knows (a simulator that forgot it, another account) can be neither paid
 * nor reused: it reads as expired.
 */
/** What readInvoice read from Mollie along the way, for a caller that needs more of it than the summary. */
export interface InvoiceReadings {
  links: Map<string, LinkReading>;
  payments: Map<string, Payment>;
}

export async function readInvoice(context: InvoiceContext, invoiceId: string, readings?: InvoiceReadings): Promise<InvoicePayment[]> {
  const mode = context.mollie.mode;
  const items: InvoicePayment[] = [];
  for (const record of context.payments.forInvoice(invoiceId, mode)) {
    if (isFinalStatus(record.status)) {
      items.push(fromCheckout(record));
      continue;
    }
    try {
      const payment = await context.mollie.getPayment(record.paymentId);
      context.payments.refresh(payment);
      readings?.payments.set(payment.id, payment);
      items.push(fromCheckout({ ...record, status: payment.status, checkoutUrl: payment.checkoutUrl, expiresAt: payment.expiresAt, paidAt: payment.paidAt }));
    } catch (error) {
      if (!(error instanceof MollieError && error.code === 'not_found')) throw error;
      items.push(fromCheckout({ ...record, status: 'expired' }));
    }
  }
  for (const record of context.payments.linksForInvoice(invoiceId, mode)) {
    if (isFinalLinkStatus(record.status) && !latestMayStillChange(context, record)) {
      items.push(fromLink(record));
      continue;
    }
    try {
      const reading = await readLink(context, record.linkId);
      readings?.links.set(record.linkId, reading);
      items.push(itemFromReading(record, reading));
    } catch (error) {
      if (!(error instanceof MollieError && error.code === 'not_found')) throw error;
      items.push(fromLink({ ...record, status: 'expired' }));
    }
  }
  return items.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** An archived or expired link with any payment through it not final when last read may yet be paid through it. */
function latestMayStillChange(context: InvoiceContext, record: LinkRecord): boolean {
  return record.status !== 'paid' && context.payments.hasUnfinishedPayments(record.linkId);
}

/**
 * Makes one payable link or checkout unpayable: a link is archived and any payment just started through it canceled,
 * a checkout canceled. Paid, or a payment under way: `conflict`, naming it, and nothing new is made. Returns it as it
 * is now (canceled, or already ended).
 */
export async function withdraw(context: InvoiceContext, item: InvoicePayment, stillOurs: () => void = () => undefined): Promise<InvoicePayment> {
  refuseIfPaidOrUnderWay(item);
  // Called before each write: a call that lost its turn on the invoice (taken for dead) stops before writing.
  stillOurs();
  if (item.kind === 'checkout') {
    if (item.status !== 'open') return item;
    const canceled = await cancelOpenPayment(context, item.paymentId!, `checkout ${item.paymentId}`);
    context.payments.refresh(canceled);
    return { ...item, status: canceled.status, url: null };
  }
  const linkId = item.linkId!;
  const record = context.payments.getLink(linkId);
  await context.mollie.archivePaymentLink(linkId);
  if (record) context.payments.archived(linkId);
  // Nothing new can start through it now; a payment begun before the archive may still be open: cancel it too, so
  // the old amount can never be paid.
  let reading = await readLink(context, linkId);
  for (const payment of reading.payments.filter((candidate) => candidate.status === 'open')) {
    stillOurs();
    context.payments.refresh(await cancelOpenPayment(context, payment.id, `payment ${payment.id} through link ${linkId}`));
  }
  if (reading.payments.some((candidate) => candidate.status === 'open')) reading = await readLink(context, linkId);
  const after = record ? itemFromReading(record, reading) : { ...item, status: reading.state.status, url: null };
  refuseIfPaidOrUnderWay(after, `Link ${linkId} was archived, but `);
  return { ...after, url: null };
}

function refuseIfPaidOrUnderWay(item: InvoicePayment, prefix = ''): void {
  if (item.status === 'paid') {
    throw new ToolError(
      'conflict',
      `${prefix}${describeItem(item)} of invoice ${item.invoiceId} is already paid (${item.amount.value} ${item.amount.currency}); nothing new was made. Refund it instead if the customer paid too much.`,
      { field: 'invoice_id' },
    );
  }
  if (isUnderWay(item)) {
    throw new ToolError(
      'conflict',
      `${prefix}a payment through ${describeItem(item)} of invoice ${item.invoiceId} is under way (${item.status}); nothing new was made, so the customer cannot pay twice. Check again with get_payment_status once it has settled.`,
      { field: 'invoice_id', retryable: true },
    );
  }
}

/** One cancel per payment, however often it is asked for. */
function cancelKey(paymentId: string): string {
  return `mim-cancel-${createHash('sha256').update(paymentId).digest('hex').slice(0, 48)}`;
}

async function cancelOpenPayment(context: InvoiceContext, paymentId: string, what: string): Promise<Payment> {
  try {
    return await context.mollie.cancelPayment(paymentId, { idempotencyKey: cancelKey(paymentId) });
  } catch (error) {
    if (error instanceof MollieError && error.code === 'mollie_rejected') {
      // Mollie will not cancel it (the method allows no cancel, or it moved on meanwhile): the customer may be paying.
      const now = await context.mollie.getPayment(paymentId);
      context.payments.refresh(now);
      if (isFinalStatus(now.status) && now.status !== 'paid') return now;
      throw new ToolError(
        'conflict',
        `Mollie would not cancel ${what} (${now.status}: ${error.mollie?.detail ?? error.message}); the customer may be paying it right now, so nothing new was made. Check again with get_payment_status ${now.expiresAt ? `after ${now.expiresAt.slice(11, 16)} UTC, when it expires` : 'shortly'}.`,
        { field: 'invoice_id', retryable: true },
      );
    }
    throw error;
  }
}

/** How many of this server's links one lookup may read from Mollie (two requests each). */
export const MAX_LINKS_ASKED = 20;

/**
 * The payment link of this server a payment was made through, found by asking Mollie: the payment itself names no
 * link. Candidates are this server's links that were taking payments of that amount when it was made, newest first;
 * `complete` is false when there were more of them than one lookup asks about.
 */
export async function findLinkOf(context: InvoiceContext, payment: Payment): Promise<{ link: LinkRecord | null; complete: boolean }> {
  // A minute's grace for clocks: the payment cannot be older than the link it was made through.
  const madeBy = new Date(Date.parse(payment.createdAt) + 60_000).toISOString();
  const candidates = context.payments.payableLinksFor(payment.amount, payment.mode, madeBy, MAX_LINKS_ASKED + 1);
  for (const candidate of candidates.slice(0, MAX_LINKS_ASKED)) {
    const reading = await readLink(context, candidate.linkId);
    if (reading.payments.some((made) => made.id === payment.id)) return { link: context.payments.getLink(candidate.linkId), complete: true };
  }
  return { link: null, complete: candidates.length <= MAX_LINKS_ASKED };
}

/** Mollie keeps an Idempotency-Key for 24 hours; an hour's margin for clocks and queues. */
const REPLAY_WINDOW_MS = 23 * 60 * 60 * 1000;

/**
 * Completes a creation an earlier call sent without recording Mollie's answer, for invoice `invoiceId`. While Mollie
 * still holds the key, the same request with the same key gets the link or checkout it made, or makes it now: either
 * way exactly one exists. Later, the account's recent links or payments are searched for it (same description and
 * amount, made since). Returns what it found or made, recorded under the earlier call's agent and key, or null when
 * it certainly does not exist.
 */
export async function completeCreation(context: InvoiceContext, invoiceId: string, creation: PendingCreation): Promise<InvoicePayment | null> {
  const since = Date.parse(creation.since);
  const replayable = context.clock().getTime() - since < REPLAY_WINDOW_MS;
  const key = { idempotencyKey: creation.idempotencyKey };
  /** Made since the creation was sent (a minute's margin for clocks), with its amount, and not recorded by us. */
  const madeSince = (candidate: { createdAt: string; amount: { value: string; currency: string } | null }, request: { amount: { value: string; currency: string } }): boolean =>
    candidate.amount?.value === request.amount.value && candidate.amount.currency === request.amount.currency && Date.parse(candidate.createdAt) >= since - 60_000;

  if (creation.kind === 'payment_link') {
    const known = context.payments.linkWithKey(creation.idempotencyKey);
    if (known) return fromLink(known);
    const request = creation.request as CreatePaymentLinkRequest;
    const link = replayable
      ? await replayed(context.mollie.createPaymentLink(request, key))
      : searched(await context.mollie.listPaymentLinksSince(new Date(since - 60_000).toISOString(), MAX_SEARCHED), invoiceId).find(
          (candidate) => candidate.description === request.description && madeSince(candidate, request) && context.payments.getLink(candidate.id) === null,
        );
    if (!link) return null;
    context.payments.addLink(link, invoiceId, creation.agent, creation.idempotencyKey, 'open', creation.callId);
    return itemFromReading(context.payments.getLink(link.id)!, await readLink(context, link.id));
  }
  const known = context.payments.checkoutWithKey(creation.idempotencyKey);
  if (known) return fromCheckout(known);
  const request = creation.request as CreatePaymentRequest;
  const payment = replayable
    ? await replayed(context.mollie.createPayment(request, key))
    : searched(await context.mollie.listPaymentsSince(new Date(since - 60_000).toISOString(), MAX_SEARCHED), invoiceId).find(
        (candidate) => candidate.metadata?.invoice_id === invoiceId && madeSince(candidate, request) && context.payments.get(candidate.id) === null,
      );
  if (!payment) return null;
  context.payments.add(payment, invoiceId, creation.agent, creation.idempotencyKey, null, creation.callId);
  return fromCheckout({ ...payment, paymentId: payment.id, invoiceId, agent: creation.agent });
}

/** How many links or payments made since a lost creation are searched for it, once Mollie has forgotten its key. */
const MAX_SEARCHED = 10_000;

/**
 * The account's links or payments since a lost creation, when the list is whole: otherwise "not found" would be a
 * guess, and a guess here could leave an old amount payable. The creation stays pending and the invoice waits.
 */
function searched<T>(listed: Listed<T>, invoiceId: string): T[] {
  if (listed.complete) return listed.items;
  throw new ToolError(
    'conflict',
    `Invoice ${invoiceId} has a pay link creation whose answer was lost more than 23 hours ago, and the account has made over ${MAX_SEARCHED} links or payments since, so it cannot be told whether it exists; nothing more is done for this invoice. The operator can look it up in the Mollie dashboard (see docs/RELIABILITY.md).`,
    { retryable: false, field: 'invoice_id' },
  );
}

/**
 * A creation repeated with its key: what Mollie made with it, or undefined when Mollie refused the request itself
 * (its expiry has passed, say), which it would not do for a key it still held: then nothing was made.
 */
async function replayed<T>(creation: Promise<T>): Promise<T | undefined> {
  try {
    return await creation;
  } catch (error) {
    if (error instanceof MollieError && error.code === 'mollie_rejected' && error.mollie?.status === 422 && error.mollie.field !== null) return undefined;
    throw error;
  }
}
