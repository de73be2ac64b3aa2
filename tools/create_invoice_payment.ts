/**
 * Issue a pay link for an invoice. Never two open links for the same invoice and amount: an open one is reused, and
 * the Idempotency-Key is derived from the request, so two identical calls racing each other make one payment.
 */
import { createHash } from '../src/crypto-on-demand.js';
import { z } from 'zod';
import { MollieError } from '../src/mollie/errors.js';
import { formatMinorUnits, parseAmount, toAmount } from '../src/mollie/money.js';
import { isFinalStatus, type Payment } from '../src/mollie/port.js';
import type { PaymentRecord } from '../src/payments/payment-records.js';
import { defineTool, type CallPlan } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { amountOut, checkAmount, currency, decimalAmount, description, invoiceId, isoTime, paymentStatus } from './fields.js';

const input = z
  .strictObject({
    invoice_id: invoiceId,
    amount: decimalAmount('amount').describe('The invoice total, e.g. "120.00".'),
    currency: currency.default('EUR'),
    amount_already_paid: decimalAmount('amount_already_paid', '100.00')
      .optional()
      .describe('Part of the invoice already paid; the pay link asks only for the rest.'),
    description: description.optional().describe('Shown to the customer; default "Invoice <invoice_id>". At most 255 characters.'),
    redirect_url: z
      .string({ error: 'redirect_url must be a string' })
      .max(2048)
      .refine(isHttpsUrl, 'redirect_url must be an https URL such as "https://pay.example.com/thanks"')
      .optional()
      .describe("Where Mollie sends the customer after paying; https, and its host must be in this agent's redirect_hosts. Default: the server's configured URL."),
    locale: z
      .string()
      .regex(/^[a-z]{2}_[A-Z]{2}$/, 'locale must look like "nl_NL" or "en_US"')
      .optional()
      .describe("Language of Mollie's checkout, e.g. nl_NL."),
  })
  .superRefine((args, context) => {
    const total = checkAmount(context, 'amount', args.amount, args.currency);
    const paid = checkAmount(context, 'amount_already_paid', args.amount_already_paid, args.currency, { allowZero: true });
    if (total !== null && paid !== null && paid >= total) {
      context.addIssue({
        code: 'custom',
        path: ['amount_already_paid'],
        message: `amount_already_paid (${args.amount_already_paid}) must be less than amount (${args.amount}): nothing would be left to pay.`,
      });
    }
  });
type Args = z.output<typeof input>;

const output = z.strictObject({
  payment_id: z.string(),
  invoice_id: z.string(),
  status: paymentStatus,
  amount: amountOut,
  checkout_url: z.string().nullable().describe('The pay link to send to the customer; null once the payment is no longer open.'),
  expires_at: isoTime.nullable(),
  mode: z.enum(['test', 'live']),
  reused: z.boolean().describe('True when an open payment for the same invoice and amount already existed and is returned instead of a new one.'),
});
type Result = z.output<typeof output>;

interface Plan extends CallPlan {
  invoiceId: string;
  amountMinor: number;
  currency: string;
  idempotencyKey: string;
  reuse: PaymentRecord | null;
  description: string;
  redirectUrl: string | null;
  mollieRedirectUrl: string | undefined;
  locale: string | undefined;
}

function isHttpsUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/** Same invoice, amount, currency and mode, and as many earlier links ended: the same payment at Mollie. */
export function paymentIdempotencyKey(invoice: string, minor: number, currencyCode: string, mode: string, ended: number): string {
  const digest = createHash('sha256').update(JSON.stringify(['invoice-payment', invoice, minor, currencyCode, mode, ended])).digest('hex');
  return `mim-pay-${digest.slice(0, 48)}`;
}

function resultFrom(payment: Pick<Payment, 'id' | 'status' | 'amount' | 'checkoutUrl' | 'expiresAt' | 'mode'>, invoice: string, reused: boolean): Result {
  return {
    payment_id: payment.id,
    invoice_id: invoice,
    status: payment.status,
    amount: payment.amount,
    checkout_url: payment.checkoutUrl,
    expires_at: payment.expiresAt,
    mode: payment.mode,
    reused,
  };
}

export const createInvoicePayment = defineTool<Args, Plan, Result>({
  name: 'create_invoice_payment',
  title: 'Create a pay link for an invoice',
  description:
    'Creates a Mollie payment for an invoice and returns its checkout URL (the pay link to send to the customer). ' +
    'Safe to repeat: if this server already holds an open payment for the same invoice and amount, that one is returned with reused: true. ' +
    'When part of the invoice was already paid, pass amount_already_paid and the link asks only for the rest. Amounts are decimal strings such as "120.00".',
  input,
  output,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  capabilities: { movesMoney: true, redirects: true, readsAuditLog: false, approvable: false },

  describe(args) {
    const paid = args.amount_already_paid ? ` (${args.amount_already_paid} already paid)` : '';
    return `create a pay link for invoice ${args.invoice_id} of ${args.amount} ${args.currency}${paid}`;
  },

  async prepare(args, context) {
    const total = parseAmount(args.amount, args.currency);
    const alreadyPaid = args.amount_already_paid === undefined ? 0 : parseAmount(args.amount_already_paid, args.currency, { allowZero: true });
    const asked = total - alreadyPaid;
    const mode = context.mollie.mode;

    // Local statuses are a cache: bring the invoice's unfinished payments up to date before judging them.
    const records: PaymentRecord[] = [];
    for (const record of context.payments.forInvoice(args.invoice_id, mode)) {
      if (isFinalStatus(record.status)) {
        records.push(record);
        continue;
      }
      let fresh: Payment;
      try {
        fresh = await context.mollie.getPayment(record.paymentId);
      } catch (error) {
        // Mollie no longer knows it (a simulator restarted, another account): it can be neither paid nor reused.
        if (error instanceof MollieError && error.code === 'not_found') {
          records.push({ ...record, status: 'expired' });
          continue;
        }
        throw error;
      }
      context.payments.refresh(fresh);
      records.push({ ...record, status: fresh.status, checkoutUrl: fresh.checkoutUrl, expiresAt: fresh.expiresAt, paidAt: fresh.paidAt });
    }

    const paidHere = records.filter((record) => record.status === 'paid' && record.amount.currency === args.currency);
    const paidMinor = paidHere.reduce((sum, record) => sum + parseAmount(record.amount.value, record.amount.currency), 0);
    if (paidMinor > alreadyPaid) {
      const paidText = `${formatMinorUnits(paidMinor, args.currency)} ${args.currency}`;
      const left = total - paidMinor;
      throw new ToolError(
        'conflict',
        left > 0
          ? `Invoice ${args.invoice_id} already has ${paidText} paid through this server (${paidHere.map((record) => record.paymentId).join(', ')}). Pass amount_already_paid "${formatMinorUnits(paidMinor, args.currency)}" to ask only for the remaining ${formatMinorUnits(left, args.currency)} ${args.currency}.`
          : `Invoice ${args.invoice_id} is already paid in full through this server (${paidHere.map((record) => record.paymentId).join(', ')}); no new pay link was created.`,
        { field: 'amount_already_paid' },
      );
    }

    const reuse =
      records.find(
        (record) =>
          (record.status === 'open' || record.status === 'pending') &&
          record.amount.currency === args.currency &&
          parseAmount(record.amount.value, record.amount.currency) === asked,
      ) ?? null;
    const ended = records.filter((record) => isFinalStatus(record.status)).length;
    const mollieRedirectUrl = args.redirect_url ?? context.settings.redirectUrl ?? undefined;
    if (mollieRedirectUrl === undefined && context.mollie.kind === 'mollie' && reuse === null) {
      throw new ToolError(
        'invalid_input',
        'Mollie needs a redirect URL for the customer after paying: pass redirect_url, or have the operator set MOLLIE_MCP_REDIRECT_URL.',
        { field: 'redirect_url' },
      );
    }
    return {
      money: { minor: asked, currency: args.currency, ...(reuse ? { reuse: true } : {}) },
      redirectUrl: args.redirect_url ?? null,
      invoiceId: args.invoice_id,
      paymentId: reuse?.paymentId ?? null,
      idempotencyKey: paymentIdempotencyKey(args.invoice_id, asked, args.currency, mode, ended),
      amountMinor: asked,
      currency: args.currency,
      reuse,
      description: args.description ?? `Invoice ${args.invoice_id}`,
      mollieRedirectUrl,
      locale: args.locale,
    };
  },

  async reconcile(call, context) {
    if (call.invoiceId === null || call.amount === null) return { happened: false, done: 'the decision names no invoice and amount, so no payment can be matched', paymentId: null, refundId: null };
    // Mollie cannot be asked by idempotency key; the payment carries the invoice id in its metadata, and it is recent.
    const since = Date.parse(call.decidedAt) - 60_000;
    const found = (await context.mollie.listRecentPayments(250)).find(
      (payment) =>
        payment.metadata?.invoice_id === call.invoiceId &&
        payment.amount.value === call.amount!.value &&
        payment.amount.currency === call.amount!.currency &&
        Date.parse(payment.createdAt) >= since,
    );
    if (!found) return { happened: false, done: `Mollie has no payment for invoice ${call.invoiceId} of ${call.amount.value} ${call.amount.currency} made since the call: it did not happen`, paymentId: null, refundId: null };
    context.payments.add(found, call.invoiceId, call.agent, call.idempotencyKey ?? `reconciled-${call.callId}`);
    return { happened: true, done: `created payment ${found.id} (${found.status}; found at Mollie after a restart)`, paymentId: found.id, refundId: null };
  },

  async run(plan, context) {
    if (plan.reuse) {
      const record = plan.reuse;
      return {
        result: resultFrom({ id: record.paymentId, status: record.status, amount: record.amount, checkoutUrl: record.checkoutUrl, expiresAt: record.expiresAt, mode: record.mode }, plan.invoiceId, true),
        moneyMoved: false,
        done: `reused the open payment ${record.paymentId}`,
        invoiceId: plan.invoiceId,
        paymentId: record.paymentId,
        refundId: null,
      };
    }
    const payment = await context.mollie.createPayment(
      {
        amount: toAmount(plan.amountMinor, plan.currency),
        description: plan.description,
        ...(plan.mollieRedirectUrl !== undefined ? { redirectUrl: plan.mollieRedirectUrl } : {}),
        ...(context.settings.webhookUrl !== null ? { webhookUrl: context.settings.webhookUrl } : {}),
        ...(plan.locale !== undefined ? { locale: plan.locale } : {}),
        metadata: { invoice_id: plan.invoiceId },
      },
      { idempotencyKey: plan.idempotencyKey },
    );
    // A twin call with the same key may have recorded this payment a moment ago: then this call moved nothing new.
    const recordedNow = context.payments.add(payment, plan.invoiceId, context.caller.agent, plan.idempotencyKey);
    return {
      result: resultFrom(payment, plan.invoiceId, !recordedNow),
      moneyMoved: recordedNow,
      done: recordedNow ? `created payment ${payment.id} (${payment.status})` : `returned payment ${payment.id}, created a moment earlier by an identical call`,
      invoiceId: plan.invoiceId,
      paymentId: payment.id,
      refundId: null,
    };
  },
});
