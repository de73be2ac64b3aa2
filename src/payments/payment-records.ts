/**
 * What this server made for invoices: checkouts (Payments API payments) and payment links, and the payments customers
 * made through those links. Mollie knows payments and links, not our invoices; these tables are how "has invoice
 * 2026-114 been paid?" is answered and how a second payable link for the same invoice is avoided. Statuses here are a
 * cache of Mollie's, refreshed whenever a tool reads from Mollie.
 */
import type { SqliteDatabase } from '../database.js';
import type { Amount } from '../mollie/money.js';
import type { MollieMode, Payment, PaymentLink, PaymentStatus } from '../mollie/port.js';
import type { LinkStatus } from './link-status.js';

export interface PaymentRecord {
  paymentId: string;
  invoiceId: string;
  agent: string;
  mode: MollieMode;
  amount: Amount;
  status: PaymentStatus;
  checkoutUrl: string | null;
  expiresAt: string | null;
  paidAt: string | null;
  createdAt: string;
  idempotencyKey: string;
  /** The payment link it was made through; null for a checkout this server created. */
  linkId: string | null;
  /** The call that created it (a checkout); null for a payment made through a link, or one recorded before 0.5. */
  callId: string | null;
}

export interface LinkRecord {
  linkId: string;
  invoiceId: string;
  agent: string;
  mode: MollieMode;
  amount: Amount;
  /** Derived when last read from Mollie (link-status.ts). */
  status: LinkStatus;
  url: string;
  expiresAt: string | null;
  archived: boolean;
  /** When this server archived it; null when it did not, or does not know. */
  archivedAt: string | null;
  paidAt: string | null;
  /** The payment that paid it, or the latest attempt; null until the customer starts paying. */
  paymentId: string | null;
  createdAt: string;
  idempotencyKey: string;
  /** The call whose decision allowed its creation. */
  callId: string | null;
}

/** What a read of a link from Mollie concluded, written back to its record. */
export interface LinkState {
  status: LinkStatus;
  paymentId: string | null;
  paidAt: string | null;
}

interface PaymentRow {
  payment_id: string;
  invoice_id: string;
  agent: string;
  mode: MollieMode;
  amount_value: string;
  currency: string;
  status: PaymentStatus;
  checkout_url: string | null;
  expires_at: string | null;
  paid_at: string | null;
  created_at: string;
  idempotency_key: string;
  link_id: string | null;
  call_id: string | null;
}

interface LinkRow {
  link_id: string;
  invoice_id: string;
  agent: string;
  mode: MollieMode;
  amount_value: string;
  currency: string;
  status: LinkStatus;
  url: string;
  expires_at: string | null;
  archived: number;
  archived_at: string | null;
  paid_at: string | null;
  payment_id: string | null;
  created_at: string;
  idempotency_key: string;
  call_id: string | null;
}

function fromPaymentRow(row: PaymentRow): PaymentRecord {
  return {
    paymentId: row.payment_id,
    invoiceId: row.invoice_id,
    agent: row.agent,
    mode: row.mode,
    amount: { value: row.amount_value, currency: row.currency },
    status: row.status,
    checkoutUrl: row.checkout_url,
    expiresAt: row.expires_at,
    paidAt: row.paid_at,
    createdAt: row.created_at,
    idempotencyKey: row.idempotency_key,
    linkId: row.link_id,
    callId: row.call_id,
  };
}

function fromLinkRow(row: LinkRow): LinkRecord {
  return {
    linkId: row.link_id,
    invoiceId: row.invoice_id,
    agent: row.agent,
    mode: row.mode,
    amount: { value: row.amount_value, currency: row.currency },
    status: row.status,
    url: row.url,
    expiresAt: row.expires_at,
    archived: row.archived === 1,
    archivedAt: row.archived_at,
    paidAt: row.paid_at,
    paymentId: row.payment_id,
    createdAt: row.created_at,
    idempotencyKey: row.idempotency_key,
    callId: row.call_id,
  };
}

export class PaymentRecords {
  private readonly checkoutsOfInvoice;
  private readonly paymentById;
  private readonly checkoutByKey;
  private readonly insertPayment;
  private readonly updatePayment;
  private readonly linksOfInvoice;
  private readonly linkById;
  private readonly linkByKey;
  private readonly openLinksWithAmount;
  private readonly anyOpenLink;
  private readonly insertLink;
  private readonly updateLink;
  private readonly markArchived;
  private readonly unfinishedOfLink;
  private readonly linkByCall;
  private readonly checkoutByCall;

  constructor(db: SqliteDatabase, private readonly clock: () => Date = () => new Date()) {
    this.checkoutsOfInvoice = db.prepare<[string, string], PaymentRow>('SELECT * FROM payments WHERE invoice_id = ? AND mode = ? AND link_id IS NULL ORDER BY created_at, rowid');
    this.paymentById = db.prepare<[string], PaymentRow>('SELECT * FROM payments WHERE payment_id = ?');
    this.checkoutByKey = db.prepare<[string], PaymentRow>('SELECT * FROM payments WHERE idempotency_key = ? AND link_id IS NULL ORDER BY created_at DESC LIMIT 1');
    this.insertPayment = db.prepare(
      `INSERT INTO payments (payment_id, invoice_id, agent, mode, amount_value, currency, status, checkout_url, expires_at, paid_at, created_at, updated_at, idempotency_key, link_id, call_id)
       VALUES (@payment_id, @invoice_id, @agent, @mode, @amount_value, @currency, @status, @checkout_url, @expires_at, @paid_at, @created_at, @updated_at, @idempotency_key, @link_id, @call_id)
       ON CONFLICT (payment_id) DO NOTHING`,
    );
    this.updatePayment = db.prepare(
      // Only when something changed: a status check of an unchanged payment writes nothing (no commit, no fsync).
      `UPDATE payments SET status = @status, checkout_url = @checkout_url, expires_at = @expires_at, paid_at = @paid_at, updated_at = @updated_at
       WHERE payment_id = @payment_id
         AND (status IS NOT @status OR checkout_url IS NOT @checkout_url OR expires_at IS NOT @expires_at OR paid_at IS NOT @paid_at)`,
    );
    this.linksOfInvoice = db.prepare<[string, string], LinkRow>('SELECT * FROM payment_links WHERE invoice_id = ? AND mode = ? ORDER BY created_at, rowid');
    this.linkById = db.prepare<[string], LinkRow>('SELECT * FROM payment_links WHERE link_id = ?');
    this.linkByKey = db.prepare<[string], LinkRow>('SELECT * FROM payment_links WHERE idempotency_key = ? ORDER BY created_at DESC LIMIT 1');
    this.openLinksWithAmount = db.prepare<[string, string, string, string, number], LinkRow>(
      "SELECT * FROM payment_links WHERE mode = ? AND amount_value = ? AND currency = ? AND status IN ('open', 'pending') AND created_at <= ? ORDER BY created_at DESC LIMIT ?",
    );
    this.anyOpenLink = db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM (SELECT 1 FROM payment_links WHERE mode = ? AND status IN ('open', 'pending') LIMIT 1) AS open_link");
    this.insertLink = db.prepare(
      `INSERT INTO payment_links (link_id, invoice_id, agent, mode, amount_value, currency, status, url, expires_at, archived, archived_at, paid_at, payment_id, created_at, updated_at, idempotency_key, call_id)
       VALUES (@link_id, @invoice_id, @agent, @mode, @amount_value, @currency, @status, @url, @expires_at, @archived, NULL, @paid_at, NULL, @created_at, @updated_at, @idempotency_key, @call_id)
       ON CONFLICT (link_id) DO NOTHING`,
    );
    this.updateLink = db.prepare(
      `UPDATE payment_links SET status = @status, url = @url, archived = @archived, paid_at = @paid_at, payment_id = @payment_id, updated_at = @updated_at
       WHERE link_id = @link_id
         AND (status IS NOT @status OR url IS NOT @url OR archived IS NOT @archived OR paid_at IS NOT @paid_at OR payment_id IS NOT @payment_id)`,
    );
    this.markArchived = db.prepare<[string, string]>('UPDATE payment_links SET archived_at = ? WHERE link_id = ? AND archived_at IS NULL');
    this.linkByCall = db.prepare<[string], LinkRow>('SELECT * FROM payment_links WHERE call_id = ?');
    this.checkoutByCall = db.prepare<[string], PaymentRow>('SELECT * FROM payments WHERE call_id = ? AND link_id IS NULL');
    this.unfinishedOfLink = db.prepare<[string], { n: number }>(
      "SELECT count(*) AS n FROM payments WHERE link_id = ? AND status NOT IN ('paid', 'canceled', 'expired', 'failed')",
    );
  }

  /** The checkouts this server created for an invoice, oldest first (payments through links are not among them). */
  forInvoice(invoiceId: string, mode: MollieMode): PaymentRecord[] {
    return this.checkoutsOfInvoice.all(invoiceId, mode).map(fromPaymentRow);
  }

  get(paymentId: string): PaymentRecord | null {
    const row = this.paymentById.get(paymentId);
    return row ? fromPaymentRow(row) : null;
  }

  /** The checkout a creation with this Idempotency-Key made, if it was recorded. */
  checkoutWithKey(idempotencyKey: string): PaymentRecord | null {
    const row = this.checkoutByKey.get(idempotencyKey);
    return row ? fromPaymentRow(row) : null;
  }

  /** Records a payment Mollie created for an invoice; false when it was already recorded (an idempotent replay). */
  add(payment: Payment, invoiceId: string, agent: string, idempotencyKey: string, linkId: string | null = null, callId: string | null = null): boolean {
    const result = this.insertPayment.run({
      payment_id: payment.id,
      invoice_id: invoiceId,
      agent,
      mode: payment.mode,
      amount_value: payment.amount.value,
      currency: payment.amount.currency,
      status: payment.status,
      checkout_url: payment.checkoutUrl,
      expires_at: payment.expiresAt,
      paid_at: payment.paidAt,
      created_at: payment.createdAt,
      updated_at: this.clock().toISOString(),
      idempotency_key: idempotencyKey,
      link_id: linkId,
      call_id: callId,
    });
    return result.changes === 1;
  }

  /** Brings a recorded payment up to date with what Mollie just said (updated_at: when it last changed); payments this server did not make are ignored. */
  refresh(payment: Payment): void {
    this.updatePayment.run({
      payment_id: payment.id,
      status: payment.status,
      checkout_url: payment.checkoutUrl,
      expires_at: payment.expiresAt,
      paid_at: payment.paidAt,
      updated_at: this.clock().toISOString(),
    });
  }

  linksForInvoice(invoiceId: string, mode: MollieMode): LinkRecord[] {
    return this.linksOfInvoice.all(invoiceId, mode).map(fromLinkRow);
  }

  getLink(linkId: string): LinkRecord | null {
    const row = this.linkById.get(linkId);
    return row ? fromLinkRow(row) : null;
  }

  /** The link a creation with this Idempotency-Key made, if it was recorded. */
  linkWithKey(idempotencyKey: string): LinkRecord | null {
    const row = this.linkByKey.get(idempotencyKey);
    return row ? fromLinkRow(row) : null;
  }

  /**
   * Links that were taking payments of this amount when a payment made at `madeAt` was started, newest first, at most
   * `limit`: where an unknown payment of that amount may have come from.
   */
  payableLinksFor(amount: Amount, mode: MollieMode, madeAt: string, limit: number): LinkRecord[] {
    return this.openLinksWithAmount.all(mode, amount.value, amount.currency, madeAt, limit).map(fromLinkRow);
  }

  /** Whether any link of this server in this mode is still taking payments. */
  hasPayableLinks(mode: MollieMode): boolean {
    return (this.anyOpenLink.get(mode)?.n ?? 0) > 0;
  }

  /** Records a link Mollie created for an invoice; false when it was already recorded. */
  addLink(link: PaymentLink, invoiceId: string, agent: string, idempotencyKey: string, status: LinkStatus, callId: string | null): boolean {
    if (link.amount === null) throw new Error(`Payment link ${link.id} has no amount; this server makes none like that.`);
    return (
      this.insertLink.run({
        link_id: link.id,
        invoice_id: invoiceId,
        agent,
        mode: link.mode,
        amount_value: link.amount.value,
        currency: link.amount.currency,
        status,
        url: link.url,
        expires_at: link.expiresAt,
        archived: link.archived ? 1 : 0,
        paid_at: link.paidAt,
        created_at: link.createdAt,
        updated_at: this.clock().toISOString(),
        idempotency_key: idempotencyKey,
        call_id: callId,
      }).changes === 1
    );
  }

  /** Brings a recorded link and the payments made through it up to date with what Mollie just said. */
  refreshLink(record: LinkRecord, link: PaymentLink, payments: readonly Payment[], state: LinkState): void {
    this.updateLink.run({
      link_id: record.linkId,
      status: state.status,
      // Mollie's link URL never changes; the simulator's follows the checkout page serving now.
      url: link.url,
      archived: link.archived ? 1 : 0,
      paid_at: state.paidAt,
      payment_id: state.paymentId,
      updated_at: this.clock().toISOString(),
    });
    for (const payment of payments) {
      if (!this.add(payment, record.invoiceId, record.agent, `link:${record.linkId}`, record.linkId)) this.refresh(payment);
    }
  }

  /** What a call created, by the call's id: a link, or a checkout. */
  madeByCall(callId: string): { linkId: string; paymentId: null } | { linkId: null; paymentId: string } | null {
    const link = this.linkByCall.get(callId);
    if (link) return { linkId: link.link_id, paymentId: null };
    const checkout = this.checkoutByCall.get(callId);
    return checkout ? { linkId: null, paymentId: checkout.payment_id } : null;
  }

  /** Whether a payment made through the link was, when last read, still able to change (open, pending, authorized). */
  hasUnfinishedPayments(linkId: string): boolean {
    return (this.unfinishedOfLink.get(linkId)?.n ?? 0) > 0;
  }

  /** Notes when this server archived a link: Mollie does not say. */
  archived(linkId: string): void {
    this.markArchived.run(this.clock().toISOString(), linkId);
  }
}
