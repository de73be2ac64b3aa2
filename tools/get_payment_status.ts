/** Has it been paid? One payment by id, or an invoice with every payment this server made for it. */
import { z } from 'zod';
import { MollieError } from '../src/mollie/errors.js';
import { describeAmount } from '../src/mollie/money.js';
import type { Payment, Refund } from '../src/mollie/port.js';
import { defineTool, type CallPlan, type ToolContext } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { amountOut, invoiceId, isoTime, paymentId, paymentStatus, refundStatus } from './fields.js';

const input = z
  .strictObject({
    payment_id: paymentId.optional(),
    invoice_id: invoiceId.optional().describe('An invoice this server created payments for; the answer covers its latest payment and lists all of them.'),
  })
  .superRefine((args, context) => {
    if ((args.payment_id === undefined) === (args.invoice_id === undefined)) {
      context.addIssue({ code: 'custom', path: [args.payment_id === undefined ? 'payment_id' : 'invoice_id'], message: 'give exactly one of payment_id or invoice_id' });
    }
  });
type Args = z.output<typeof input>;

const output = z.strictObject({
  payment_id: z.string(),
  invoice_id: z.string().nullable(),
  status: paymentStatus.describe("Mollie's status; paid, canceled, expired and failed are final."),
  status_label: z.string().describe('One readable sentence, e.g. "Paid on 21 Nov 2026, 14:03 UTC".'),
  is_final: z.boolean(),
  amount: amountOut,
  amount_refunded: amountOut.nullable(),
  amount_remaining: amountOut.nullable().describe('What can still be refunded; null until paid.'),
  paid_at: isoTime.nullable(),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
  checkout_url: z.string().nullable().describe('Only while the payment can still be paid.'),
  method: z.string().nullable(),
  refunds: z.array(z.strictObject({ refund_id: z.string(), status: refundStatus, amount: amountOut, created_at: isoTime })),
  payments: z
    .array(z.strictObject({ payment_id: z.string(), status: paymentStatus, amount: amountOut, created_at: isoTime, paid_at: isoTime.nullable() }))
    .describe('Every payment this server made for the invoice, oldest first.'),
});
type Result = z.output<typeof output>;

interface Plan extends CallPlan {
  lookup: { paymentId: string } | { invoiceId: string };
}

// Made on first use, not at import: building an Intl formatter loads ICU's locale data, which costs every server
// start about 15 ms and 9 MB of memory though most starts never show a date.
let WHEN: Intl.DateTimeFormat | undefined;

function when(iso: string | null): string {
  WHEN ??= new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' });
  return iso === null ? 'an unknown time' : `${WHEN.format(new Date(iso)).replace(' at ', ', ')} UTC`;
}

/** "Paid on 21 Nov 2026, 14:03 UTC; 20.00 EUR refunded" */
export function statusLabel(payment: Payment): string {
  switch (payment.status) {
    case 'open':
      return `Open: waiting for the customer to pay${payment.expiresAt ? `; the link expires on ${when(payment.expiresAt)}` : ''}`;
    case 'pending':
      return 'Pending: the customer has started paying and the result is not known yet';
    case 'authorized':
      return 'Authorized: the payment is approved and waits to be captured';
    case 'paid': {
      const refunded = payment.amountRefunded && payment.amountRefunded.value !== '0.00' && payment.amountRefunded.value !== '0' ? `; ${describeAmount(payment.amountRefunded)} refunded` : '';
      return `Paid on ${when(payment.paidAt)}${refunded}`;
    }
    case 'canceled':
      return `Canceled on ${when(payment.canceledAt)}; nothing was paid`;
    case 'expired':
      return `Expired on ${when(payment.expiredAt)} without being paid`;
    case 'failed':
      return `Failed on ${when(payment.failedAt)}; nothing was paid`;
  }
}

async function currentPayments(invoice: string, context: ToolContext): Promise<Payment[]> {
  const records = context.payments.forInvoice(invoice, context.mollie.mode);
  if (records.length === 0) {
    throw new ToolError('not_found', `This server has created no payment for invoice ${invoice} (in ${context.mollie.mode} mode). Check the invoice id, or create one with create_invoice_payment.`, { field: 'invoice_id' });
  }
  const payments: Payment[] = [];
  for (const record of records) {
    try {
      const payment = await context.mollie.getPayment(record.paymentId);
      context.payments.refresh(payment);
      payments.push(payment);
    } catch (error) {
      // Mollie no longer knows it (a restarted simulator, another account): report the payments it does know.
      if (!(error instanceof MollieError && error.code === 'not_found')) throw error;
    }
  }
  if (payments.length === 0) {
    throw new ToolError('not_found', `Mollie no longer knows any of the payments this server made for invoice ${invoice} (${records.map((record) => record.paymentId).join(', ')}); create a new pay link with create_invoice_payment.`, { field: 'invoice_id' });
  }
  return payments;
}

export const getPaymentStatus = defineTool<Args, Plan, Result>({
  name: 'get_payment_status',
  title: 'Get the status of a payment or invoice',
  description:
    'Tells whether a payment (by payment_id) or an invoice (by invoice_id) has been paid: Mollie\'s status, a readable status_label, ' +
    'what was refunded and can still be refunded, the pay link while it is open, and for an invoice every payment this server created for it.',
  input,
  output,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  capabilities: { movesMoney: false, redirects: false, readsAuditLog: false, approvable: false },

  describe(args) {
    return args.payment_id !== undefined ? `read the status of payment ${args.payment_id}` : `read the status of invoice ${args.invoice_id ?? ''}`;
  },

  async prepare(args) {
    return {
      money: null,
      redirectUrl: null,
      invoiceId: args.invoice_id ?? null,
      paymentId: args.payment_id ?? null,
      idempotencyKey: null,
      lookup: args.payment_id !== undefined ? { paymentId: args.payment_id } : { invoiceId: args.invoice_id ?? '' },
    };
  },

  async run(plan, context) {
    let payment: Payment;
    let invoice: string | null;
    let invoicePayments: Pick<Payment, 'id' | 'status' | 'amount' | 'createdAt' | 'paidAt'>[];
    if ('paymentId' in plan.lookup) {
      payment = await context.mollie.getPayment(plan.lookup.paymentId);
      context.payments.refresh(payment);
      invoice = context.payments.get(payment.id)?.invoiceId ?? payment.metadata?.invoice_id ?? null;
      const fresh = payment;
      // The other payments of the invoice come from the local records; only the one asked about is read from Mollie.
      const listed = invoice === null ? [] : context.payments.forInvoice(invoice, payment.mode);
      invoicePayments = listed.length === 0 ? [payment] : [];
      for (const record of listed) {
        invoicePayments.push(record.paymentId === fresh.id ? fresh : { id: record.paymentId, status: record.status, amount: record.amount, createdAt: record.createdAt, paidAt: record.paidAt });
      }
    } else {
      invoice = plan.lookup.invoiceId;
      const all = await currentPayments(invoice, context);
      invoicePayments = all;
      // The latest payment speaks for the invoice; the others are listed.
      payment = all.at(-1)!;
    }
    const refunds: Refund[] = payment.amountRefunded !== null ? await context.mollie.listRefunds(payment.id) : [];
    const label = statusLabel(payment);
    return {
      result: {
        payment_id: payment.id,
        invoice_id: invoice,
        status: payment.status,
        status_label: label,
        is_final: payment.isFinal,
        amount: payment.amount,
        amount_refunded: payment.amountRefunded,
        amount_remaining: payment.amountRemaining,
        paid_at: payment.paidAt,
        created_at: payment.createdAt,
        expires_at: payment.expiresAt,
        checkout_url: payment.status === 'open' ? payment.checkoutUrl : null,
        method: payment.method,
        refunds: refunds.map((refund) => ({ refund_id: refund.id, status: refund.status, amount: refund.amount, created_at: refund.createdAt })),
        payments: invoicePayments.map((item) => ({ payment_id: item.id, status: item.status, amount: item.amount, created_at: item.createdAt, paid_at: item.paidAt })),
      },
      moneyMoved: false,
      done: `payment ${payment.id} is ${payment.status}`,
      invoiceId: invoice,
      paymentId: payment.id,
      refundId: null,
    };
  },
});
