/**
 * The payments this server created, linked to their invoices. Mollie knows payments, not our invoices; this table is
 * how "has invoice 2026-114 been paid?" is answered and how a second pay link for the same invoice is avoided.
 * Statuses here are a cache of Mollie's, refreshed whenever a tool reads a payment.
 */
import type { SqliteDatabase } from '../database.js';
import type { Amount } from '../mollie/money.js';
import type { MollieMode, Payment, PaymentStatus } from '../mollie/port.js';

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
}

interface Row {
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
}

function fromRow(row: Row): PaymentRecord {
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
  };
}

export class PaymentRecords {
  private readonly byInvoice;
  private readonly byId;
  private readonly insertRow;
  private readonly updateRow;

  constructor(db: SqliteDatabase, private readonly clock: () => Date = () => new Date()) {
    this.byInvoice = db.prepare<[string, string], Row>('SELECT * FROM payments WHERE invoice_id = ? AND mode = ? ORDER BY created_at, rowid');
    this.byId = db.prepare<[string], Row>('SELECT * FROM payments WHERE payment_id = ?');
    this.insertRow = db.prepare(
      `INSERT INTO payments (payment_id, invoice_id, agent, mode, amount_value, currency, status, checkout_url, expires_at, paid_at, created_at, updated_at, idempotency_key)
       VALUES (@payment_id, @invoice_id, @agent, @mode, @amount_value, @currency, @status, @checkout_url, @expires_at, @paid_at, @created_at, @updated_at, @idempotency_key)
       ON CONFLICT (payment_id) DO NOTHING`,
    );
    this.updateRow = db.prepare(
      // Only when something changed: a status check of an unchanged payment writes nothing (no commit, no fsync).
      `UPDATE payments SET status = @status, checkout_url = @checkout_url, expires_at = @expires_at, paid_at = @paid_at, updated_at = @updated_at
       WHERE payment_id = @payment_id
         AND (status IS NOT @status OR checkout_url IS NOT @checkout_url OR expires_at IS NOT @expires_at OR paid_at IS NOT @paid_at)`,
    );
  }

  forInvoice(invoiceId: string, mode: MollieMode): PaymentRecord[] {
    return this.byInvoice.all(invoiceId, mode).map(fromRow);
  }

  get(paymentId: string): PaymentRecord | null {
    const row = this.byId.get(paymentId);
    return row ? fromRow(row) : null;
  }

  /** Records a payment Mollie created for an invoice; false when it was already recorded (an idempotent replay). */
  add(payment: Payment, invoiceId: string, agent: string, idempotencyKey: string): boolean {
    const result = this.insertRow.run({
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
    });
    return result.changes === 1;
  }

  /** Brings a recorded payment up to date with what Mollie just said (updated_at: when it last changed); payments this server did not make are ignored. */
  refresh(payment: Payment): void {
    this.updateRow.run({
      payment_id: payment.id,
      status: payment.status,
      checkout_url: payment.checkoutUrl,
      expires_at: payment.expiresAt,
      paid_at: payment.paidAt,
      updated_at: this.clock().toISOString(),
    });
  }
}
