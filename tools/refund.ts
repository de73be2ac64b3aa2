/**
 * Refund a paid payment, in part or in full. Each call has its own Idempotency-Key, recorded in the decision row
 * before Mollie is asked, so the client's retries of one call can never refund twice.
 */
import { randomUUID } from '../src/crypto-on-demand.js';
import { z } from 'zod';
import { checkAmountForAnyCurrency, formatMinorUnits, MoneyError, parseAmount, toAmount } from '../src/mollie/money.js';
import { APPROVAL_ID } from '../src/approvals/approvals.js';
import { defineTool, type CallPlan } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { amountOut, decimalAmount, description, isoTime, paymentId, refundStatus } from './fields.js';

const input = z
  .strictObject({
    payment_id: paymentId.describe('The paid Mollie payment to refund, "tr_..."'),
    amount: decimalAmount('amount', '20.00').optional().describe('How much to refund, in the payment\'s currency; default: everything that can still be refunded.'),
    description: description.optional().describe('Shown on the customer\'s statement where the method supports it; at most 255 characters.'),
    approval_id: z
      .string()
      .regex(APPROVAL_ID, 'must be an approval id such as "ap_" followed by 24 letters and digits, as given in an approval_required error')
      .optional()
      .describe('When a person approved this exact refund out of band (after an approval_required error): the approval_id from that error.'),
    allow_repeat: z
      .boolean()
      .optional()
      .describe('Set to true only when a second refund of the same amount on the same payment within 10 minutes is really intended; otherwise it is refused as a duplicate.'),
  })
  .superRefine((args, context) => {
    // The payment's currency is known only from Mollie; here the amount must at least be a plain positive decimal.
    if (args.amount === undefined) return;
    try {
      checkAmountForAnyCurrency(args.amount);
    } catch (error) {
      if (!(error instanceof MoneyError)) throw error;
      context.addIssue({ code: 'custom', path: ['amount'], message: `amount: ${error.message}` });
    }
  });
type Args = z.output<typeof input>;

/** An identical refund within this window is taken for a retry, not a wish. */
const REPEAT_WINDOW_MS = 10 * 60 * 1000;

const output = z.strictObject({
  refund_id: z.string(),
  payment_id: z.string(),
  status: refundStatus.describe('Mollie\'s refund status: queued, pending, processing, refunded, failed or canceled.'),
  amount: amountOut,
  created_at: isoTime,
});
type Result = z.output<typeof output>;

interface Plan extends CallPlan {
  paymentId: string;
  idempotencyKey: string;
  amountMinor: number;
  currency: string;
  description: string | undefined;
}

export const refund = defineTool<Args, Plan, Result>({
  name: 'refund',
  title: 'Refund a paid payment',
  description:
    'Refunds a paid Mollie payment, in part (amount, e.g. "20.00") or, without amount, everything that can still be refunded. ' +
    'Money leaves the account: this cannot be undone. Only paid payments can be refunded, and at most their amount_remaining (see get_payment_status).',
  input,
  output,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  capabilities: { movesMoney: true, redirects: false, readsAuditLog: false, approvable: true, actsOnPayments: true, withdrawsLinks: false },

  requested(args) {
    return args.amount === undefined ? null : { value: args.amount, currency: null };
  },

  describe(args) {
    return args.amount !== undefined ? `refund ${args.amount} of payment ${args.payment_id}` : `refund the remainder of payment ${args.payment_id}`;
  },

  async prepare(args, context) {
    const payment = await context.mollie.getPayment(args.payment_id);
    context.payments.refresh(payment);
    const invoiceId = context.payments.get(payment.id)?.invoiceId ?? payment.metadata?.invoice_id ?? null;
    const currency = payment.amount.currency;
    const remaining = payment.amountRemaining === null ? null : parseAmount(payment.amountRemaining.value, currency, { allowZero: true });
    let amountMinor: number | null = remaining;
    if (args.amount !== undefined) {
      try {
        amountMinor = parseAmount(args.amount, currency);
      } catch (error) {
        if (error instanceof MoneyError) throw new ToolError('invalid_input', `amount: ${error.message}`, { field: 'amount' });
        throw error;
      }
    }
    // What is wrong with the refund besides the policy: reported after the policy's caps, which come first.
    let refusal: ToolError | null = null;
    if (payment.status !== 'paid' || remaining === null) {
      refusal = new ToolError('conflict', `Payment ${payment.id} is ${payment.status}, not paid; only paid payments can be refunded.`, { field: 'payment_id' });
    } else if (remaining === 0) {
      refusal = new ToolError('conflict', `Payment ${payment.id} has been refunded in full already; nothing remains to refund.`, { field: 'payment_id' });
    } else if (amountMinor !== null && amountMinor > remaining) {
      refusal = new ToolError(
        'conflict',
        `amount ${args.amount} ${currency} is more than the ${formatMinorUnits(remaining, currency)} ${currency} that can still be refunded on payment ${payment.id}.`,
        { field: 'amount' },
      );
    }
    if (amountMinor === null || amountMinor === 0) throw refusal!;
    if (refusal === null && args.allow_repeat !== true) {
      // Refunds made elsewhere (another server, the Mollie dashboard) count too: ask Mollie what it already has.
      const since = context.clock().getTime() - REPEAT_WINDOW_MS;
      const same = (await context.mollie.listRefunds(payment.id)).find(
        (earlier) =>
          earlier.amount.currency === currency &&
          parseAmount(earlier.amount.value, currency) === amountMinor &&
          earlier.status !== 'failed' &&
          earlier.status !== 'canceled' &&
          Date.parse(earlier.createdAt) >= since,
      );
      if (same) {
        refusal = new ToolError(
          'conflict',
          `Mollie already has a refund of ${same.amount.value} ${currency} on payment ${payment.id}, made at ${same.createdAt.slice(11, 16)} UTC (refund ${same.id}, ${same.status}). If a second one is really intended, repeat the call with allow_repeat: true.`,
          { field: 'allow_repeat', reason: 'duplicate_call' },
        );
      }
    }
    return {
      repeat: args.allow_repeat === true ? null : { key: `refund:${payment.id}:${currency}:${amountMinor}`, windowMs: REPEAT_WINDOW_MS, what: `refund of ${formatMinorUnits(amountMinor, currency)} ${currency} on payment ${payment.id}` },
      money: { minor: amountMinor, currency },
      redirectUrl: null,
      invoiceId,
      paymentId: payment.id,
      idempotencyKey: `mim-refund-${randomUUID()}`,
      ...(refusal ? { refusal } : {}),
      amountMinor,
      currency,
      description: args.description,
    };
  },

  async reconcile(call, context) {
    if (call.paymentId === null) return { happened: false, done: 'the decision names no payment, so no refund can have been made', paymentId: null, refundId: null };
    const refunds = await context.mollie.listRefunds(call.paymentId);
    const found = refunds.find((refund) => refund.metadata?.audit_id === call.callId);
    if (!found) return { happened: false, done: `Mollie has no refund of this call on payment ${call.paymentId}: it did not happen`, paymentId: call.paymentId, refundId: null };
    return { happened: true, done: `refund ${found.id} of ${found.amount.value} ${found.amount.currency} is ${found.status} (found at Mollie after a restart)`, paymentId: call.paymentId, refundId: found.id };
  },

  async run(plan, context) {
    const created = await context.mollie.createRefund(
      plan.paymentId,
      {
        amount: toAmount(plan.amountMinor, plan.currency),
        ...(plan.description !== undefined ? { description: plan.description } : {}),
        // The call id lets a restart find this refund at Mollie if the server died before hearing the answer.
        metadata: { ...(plan.invoiceId !== null ? { invoice_id: plan.invoiceId } : {}), audit_id: context.callId },
      },
      { idempotencyKey: plan.idempotencyKey },
    );
    return {
      result: { refund_id: created.id, payment_id: created.paymentId, status: created.status, amount: created.amount, created_at: created.createdAt },
      moneyMoved: true,
      done: `refund ${created.id} of ${created.amount.value} ${created.amount.currency} is ${created.status}`,
      invoiceId: plan.invoiceId,
      paymentId: created.paymentId,
      refundId: created.id,
    };
  },
});
