/** Has it been paid? One payment, one payment link, or an invoice with every link and checkout this server made for it. */
import { z } from 'zod';
import { MollieError } from '../src/mollie/errors.js';
import { amountToMinorUnits, describeAmount, toAmount } from '../src/mollie/money.js';
import type { Payment, Refund } from '../src/mollie/port.js';
import { isFinalLinkStatus, type LinkStatus } from '../src/payments/link-status.js';
import { findLinkOf, itemFromReading, readInvoice, readLink, recordedInvoice, type InvoicePayment, type InvoiceReadings, type LinkReading } from '../src/payments/invoice-payments.js';
import { defineTool, type CallPlan, type ToolContext } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { amountOut, invoiceId, isoTime, paymentId, paymentKind, paymentLinkId, paymentStatus, refundStatus } from './fields.js';

const LOOKUPS = ['payment_id', 'payment_link_id', 'invoice_id'] as const;

const input = z
  .strictObject({
    payment_id: paymentId.optional(),
    payment_link_id: paymentLinkId.optional().describe('The Mollie payment link id, "pl_...": its status is derived from the link and the payments made through it.'),
    invoice_id: invoiceId.optional().describe('An invoice this server created pay links for; the answer covers its latest link or checkout and lists all of them.'),
  })
  .superRefine((args, context) => {
    const given = LOOKUPS.filter((name) => args[name] !== undefined);
    if (given.length !== 1) {
      context.addIssue({ code: 'custom', path: [given[1] ?? 'payment_id'], message: 'give exactly one of payment_id, payment_link_id or invoice_id' });
    }
  });
type Args = z.output<typeof input>;

const output = z.strictObject({
  payment_id: z.string().nullable().describe('The payment ("tr_..."); for a link, the one that paid it, else the latest attempt, else null.'),
  payment_link_id: z.string().nullable(),
  kind: paymentKind,
  invoice_id: z.string().nullable(),
  status: paymentStatus.describe("Mollie's status for a checkout or payment; for a link, derived: paid, pending, canceled (withdrawn), expired or open."),
  status_label: z.string().describe('One readable sentence, e.g. "Paid on 21 Nov 2026, 14:03 UTC".'),
  is_final: z.boolean(),
  amount: amountOut,
  amount_refunded: amountOut.nullable(),
  amount_remaining: amountOut.nullable().describe('What can still be refunded; null until paid.'),
  paid_at: isoTime.nullable(),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
  checkout_url: z.string().nullable().describe('Only while it can still be paid.'),
  method: z.string().nullable(),
  refunds: z.array(z.strictObject({ refund_id: z.string(), status: refundStatus, amount: amountOut, created_at: isoTime })),
  payments: z
    .array(
      z.strictObject({
        kind: paymentKind,
        payment_link_id: z.string().nullable(),
        payment_id: z.string().nullable(),
        status: paymentStatus,
        amount: amountOut,
        created_at: isoTime,
        paid_at: isoTime.nullable(),
      }),
    )
    .describe('Every pay link and checkout this server made for the invoice, oldest first.'),
});
type Result = z.output<typeof output>;

type Lookup = { paymentId: string } | { paymentLinkId: string } | { invoiceId: string };

interface Plan extends CallPlan {
  lookup: Lookup;
}

// Made on first use, not at import: building an Intl formatter loads ICU's locale data, which costs every server
// start about 15 ms and 9 MB of memory though most starts never show a date.
let WHEN: Intl.DateTimeFormat | undefined;
let DAY: Intl.DateTimeFormat | undefined;

function when(iso: string | null): string {
  WHEN ??= new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' });
  return iso === null ? 'an unknown time' : `${WHEN.format(new Date(iso)).replace(' at ', ', ')} UTC`;
}

/** A link's end: "31 Jan 2027" when it ends with that UTC day, as a date given to create_invoice_payment does. */
function until(iso: string): string {
  if (!/T23:59:59/.test(new Date(iso).toISOString())) return when(iso);
  DAY ??= new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
  return DAY.format(new Date(iso));
}

const UNDER_WAY = new Set<Refund['status']>(['queued', 'pending', 'processing']);

/**
 * "; 20.00 EUR refunded", "; 5.00 EUR refunded; a refund of 60.00 EUR is pending". Mollie's amountRefunded counts
 * refunds still under way, so a label built on it alone would call money refunded that has not gone back yet.
 */
function refundedPart(payment: Payment | null, refunds: readonly Refund[]): string {
  if (!payment) return '';
  const currency = payment.amount.currency;
  const total = (status: (refund: Refund) => boolean): number =>
    refunds.filter(status).reduce((sum, refund) => sum + amountToMinorUnits(refund.amount), 0);
  const underWay = total((refund) => UNDER_WAY.has(refund.status));
  const refunded = amountToMinorUnits(payment.amountRefunded ?? toAmount(0, currency)) - underWay;
  return [
    refunded > 0 ? `; ${describeAmount(toAmount(refunded, currency))} refunded` : '',
    underWay > 0 ? `; a refund of ${describeAmount(toAmount(underWay, currency))} is ${refunds.some((refund) => refund.status === 'pending' || refund.status === 'queued') ? 'pending' : 'processing'}` : '',
  ].join('');
}

/** "Paid on 21 Nov 2026, 14:03 UTC; 20.00 EUR refunded" */
export function statusLabel(payment: Payment, refunds: readonly Refund[] = []): string {
  switch (payment.status) {
    case 'open':
      return `Open: waiting for the customer to pay${payment.expiresAt ? `; the checkout expires on ${when(payment.expiresAt)}` : ''}`;
    case 'pending':
      return 'Pending: the customer has started paying and the result is not known yet';
    case 'authorized':
      return 'Authorized: the payment is approved and waits to be captured';
    case 'paid':
      return `Paid on ${when(payment.paidAt)}${refundedPart(payment, refunds)}`;
    case 'canceled':
      return `Canceled on ${when(payment.canceledAt)}; nothing was paid`;
    case 'expired':
      return `Expired on ${when(payment.expiredAt)} without being paid`;
    case 'failed':
      return `Failed on ${when(payment.failedAt)}; nothing was paid`;
  }
}

/** "Open until 31 Jan 2027; not paid yet", "Paid on 3 Dec 2026, 10:12 UTC through its pay link" */
export function linkStatusLabel(status: LinkStatus, reading: LinkReading, archivedAt: string | null, refunds: readonly Refund[] = []): string {
  const { link, state } = reading;
  switch (status) {
    case 'open':
      return link.expiresAt ? `Open until ${until(link.expiresAt)}; not paid yet` : 'Open, with no expiry; not paid yet';
    case 'pending':
      return 'Pending: the customer has started paying through the pay link and the result is not known yet';
    case 'paid':
      return `Paid on ${when(state.paidAt)} through its pay link${refundedPart(state.payment, refunds)}`;
    case 'canceled':
      return `Withdrawn${archivedAt ? ` on ${when(archivedAt)}` : ''}: the pay link was archived and can no longer be paid; nothing was paid`;
    case 'expired':
      return `Expired on ${link.expiresAt ? until(link.expiresAt) : 'an unknown date'} without being paid`;
  }
}

function listed(item: InvoicePayment): Result['payments'][number] {
  return { kind: item.kind, payment_link_id: item.linkId, payment_id: item.paymentId, status: item.status, amount: item.amount, created_at: item.createdAt, paid_at: item.paidAt };
}

async function refundsOf(payment: Payment | null, context: ToolContext): Promise<Refund[]> {
  return payment !== null && payment.amountRefunded !== null ? context.mollie.listRefunds(payment.id) : [];
}

function fromPayment(payment: Payment, refunds: Refund[], extra: { kind: Result['kind']; linkId: string | null; invoiceId: string | null; items: InvoicePayment[] }): Result {
  return {
    payment_id: payment.id,
    payment_link_id: extra.linkId,
    kind: extra.kind,
    invoice_id: extra.invoiceId,
    status: payment.status,
    status_label: statusLabel(payment, refunds),
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
    payments: extra.items.map(listed),
  };
}

/** A link's amount; one where the customer chooses the amount has none until they pay, and is not this server's kind. */
function linkAmount(reading: LinkReading): { value: string; currency: string } {
  const amount = reading.link.amount ?? reading.state.payment?.amount;
  if (!amount) {
    throw new ToolError('not_found', `Payment link ${reading.link.id} has no fixed amount (the customer chooses it) and nothing was paid through it yet; this server reports pay links with an amount, such as create_invoice_payment makes.`, { field: 'payment_link_id' });
  }
  return amount;
}

function fromLinkReading(reading: LinkReading, refunds: Refund[], extra: { invoiceId: string | null; items: InvoicePayment[]; archivedAt: string | null }): Result {
  const { link, state } = reading;
  const payment = state.payment;
  const paid = state.status === 'paid' ? payment : null;
  return {
    payment_id: payment?.id ?? null,
    payment_link_id: link.id,
    kind: 'payment_link',
    invoice_id: extra.invoiceId,
    status: state.status,
    status_label: linkStatusLabel(state.status, reading, extra.archivedAt, refunds),
    is_final: isFinalLinkStatus(state.status),
    amount: linkAmount(reading),
    amount_refunded: paid?.amountRefunded ?? null,
    amount_remaining: paid?.amountRemaining ?? null,
    paid_at: state.paidAt,
    created_at: link.createdAt,
    expires_at: link.expiresAt,
    checkout_url: state.status === 'open' ? link.url : null,
    method: payment?.method ?? null,
    refunds: refunds.map((refund) => ({ refund_id: refund.id, status: refund.status, amount: refund.amount, created_at: refund.createdAt })),
    payments: extra.items.map(listed),
  };
}

/** The invoice's items as recorded, with `fresh` in place of its own entry (or as the only one). */
function invoiceItems(context: ToolContext, invoice: string | null, fresh: InvoicePayment | null): InvoicePayment[] {
  const recorded = invoice === null ? [] : recordedInvoice(context.payments, invoice, context.mollie.mode);
  if (fresh === null) return recorded;
  const key = (item: InvoicePayment): string => item.linkId ?? item.paymentId ?? '';
  return recorded.length === 0 ? [fresh] : recorded.map((item) => (key(item) === key(fresh) ? fresh : item));
}

export const getPaymentStatus = defineTool<Args, Plan, Result>({
  name: 'get_payment_status',
  title: 'Get the status of a payment, pay link or invoice',
  description:
    'Tells whether an invoice (by invoice_id), a pay link (by payment_link_id) or a payment (by payment_id) has been paid: the status, a readable status_label, ' +
    'what was refunded and can still be refunded, the pay link while it can be paid, and for an invoice every link and checkout this server created for it. ' +
    'For a paid link, payment_id is the payment to refund.',
  input,
  output,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  capabilities: { movesMoney: false, redirects: false, readsAuditLog: false, approvable: false, actsOnPayments: false, withdrawsLinks: false },

  describe(args) {
    if (args.payment_id !== undefined) return `read the status of payment ${args.payment_id}`;
    if (args.payment_link_id !== undefined) return `read the status of payment link ${args.payment_link_id}`;
    return `read the status of invoice ${args.invoice_id ?? ''}`;
  },

  async prepare(args) {
    const lookup: Lookup =
      args.payment_id !== undefined ? { paymentId: args.payment_id } : args.payment_link_id !== undefined ? { paymentLinkId: args.payment_link_id } : { invoiceId: args.invoice_id ?? '' };
    return {
      money: null,
      redirectUrl: null,
      invoiceId: args.invoice_id ?? null,
      paymentId: args.payment_id ?? null,
      paymentLinkId: args.payment_link_id ?? null,
      idempotencyKey: null,
      lookup,
    };
  },

  async run(plan, context) {
    let result: Result;
    if ('paymentId' in plan.lookup) {
      const payment = await context.mollie.getPayment(plan.lookup.paymentId);
      context.payments.refresh(payment);
      // A payment with no record and no metadata may have been made through one of this server's links, not read yet.
      if (context.payments.get(payment.id) === null && payment.metadata === null && context.payments.hasPayableLinks(payment.mode)) await findLinkOf(context, payment);
      const record = context.payments.get(payment.id);
      const invoice = record?.invoiceId ?? payment.metadata?.invoice_id ?? null;
      const linkId = record?.linkId ?? null;
      const items = invoiceItems(context, invoice, linkId === null ? { kind: 'checkout', linkId: null, paymentId: payment.id, amount: payment.amount, status: payment.status, url: null, expiresAt: payment.expiresAt, paidAt: payment.paidAt, createdAt: payment.createdAt, invoiceId: invoice ?? '', agent: '' } : null);
      result = fromPayment(payment, await refundsOf(payment, context), { kind: linkId === null ? 'checkout' : 'payment_link', linkId, invoiceId: invoice, items });
    } else if ('paymentLinkId' in plan.lookup) {
      const reading = await readLink(context, plan.lookup.paymentLinkId);
      const record = context.payments.getLink(reading.link.id);
      const invoice = record?.invoiceId ?? null;
      const fresh = record ? itemFromReading(record, reading) : null;
      const items = invoiceItems(context, invoice, fresh);
      result = fromLinkReading(reading, await refundsOf(reading.state.status === 'paid' ? reading.state.payment : null, context), {
        invoiceId: invoice,
        items: items.length > 0 ? items : [{ kind: 'payment_link', linkId: reading.link.id, paymentId: reading.state.payment?.id ?? null, amount: linkAmount(reading), status: reading.state.status, url: null, expiresAt: reading.link.expiresAt, paidAt: reading.state.paidAt, createdAt: reading.link.createdAt, invoiceId: '', agent: '' }],
        archivedAt: record?.archivedAt ?? null,
      });
    } else {
      const invoice = plan.lookup.invoiceId;
      const readings: InvoiceReadings = { links: new Map(), payments: new Map() };
      const items = await readInvoice(context, invoice, readings);
      if (items.length === 0) {
        throw new ToolError('not_found', `This server has created no pay link for invoice ${invoice} (in ${context.mollie.mode} mode). Check the invoice id, or create one with create_invoice_payment.`, { field: 'invoice_id' });
      }
      // The latest link or checkout speaks for the invoice; all of them are listed.
      result = await speakFor(items.at(-1)!, items, readings, context);
    }
    return {
      result,
      moneyMoved: false,
      done: `${result.kind === 'payment_link' ? `payment link ${result.payment_link_id}` : `payment ${result.payment_id}`} is ${result.status}`,
      invoiceId: result.invoice_id,
      paymentId: result.payment_id,
      paymentLinkId: result.payment_link_id,
      refundId: null,
    };
  },
});

async function speakFor(latest: InvoicePayment, items: InvoicePayment[], readings: InvoiceReadings, context: ToolContext): Promise<Result> {
  try {
    if (latest.kind === 'payment_link') {
      const reading = readings.links.get(latest.linkId!) ?? (await readLink(context, latest.linkId!));
      return fromLinkReading(reading, await refundsOf(reading.state.status === 'paid' ? reading.state.payment : null, context), {
        invoiceId: latest.invoiceId,
        items,
        archivedAt: context.payments.getLink(latest.linkId!)?.archivedAt ?? null,
      });
    }
    const payment = readings.payments.get(latest.paymentId!) ?? (await context.mollie.getPayment(latest.paymentId!));
    return fromPayment(payment, await refundsOf(payment, context), { kind: 'checkout', linkId: null, invoiceId: latest.invoiceId, items });
  } catch (error) {
    if (error instanceof MollieError && error.code === 'not_found') {
      throw new ToolError('not_found', `Mollie no longer knows the latest pay link this server made for invoice ${latest.invoiceId} (${latest.linkId ?? latest.paymentId}); create a new one with create_invoice_payment.`, { field: 'invoice_id' });
    }
    throw error;
  }
}
