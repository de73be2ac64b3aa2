/**
 * Withdraw what an invoice can still be paid with: its open payment links are archived and its open checkouts
 * canceled at Mollie, for an invoice that was corrected, credited or paid some other way. Already ended is not an
 * error; paid, or a payment under way, is a conflict that names it (refund a paid one instead).
 */
import { z } from 'zod';
import { completeCreation, describeItem, isPayable, isUnderWay, readInvoice, withdraw, type InvoicePayment } from '../src/payments/invoice-payments.js';
import { defineTool, type CallPlan, type ToolContext } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { invoiceId, paymentId, paymentKind, paymentLinkId, paymentStatus } from './fields.js';

const TARGETS = ['invoice_id', 'payment_link_id', 'payment_id'] as const;

const input = z
  .strictObject({
    invoice_id: invoiceId.optional().describe('Withdraw every pay link and checkout of this invoice that can still be paid.'),
    payment_link_id: paymentLinkId.optional().describe('Withdraw this one payment link ("pl_...").'),
    payment_id: paymentId.optional().describe('Cancel this one checkout ("tr_..."); a payment made through a link withdraws that link.'),
  })
  .superRefine((args, context) => {
    const given = TARGETS.filter((name) => args[name] !== undefined);
    if (given.length !== 1) context.addIssue({ code: 'custom', path: [given[1] ?? 'invoice_id'], message: 'give exactly one of invoice_id, payment_link_id or payment_id' });
  });
type Args = z.output<typeof input>;

const output = z.strictObject({
  invoice_id: z.string(),
  canceled: z
    .array(z.strictObject({ kind: paymentKind, payment_link_id: z.string().nullable(), payment_id: z.string().nullable(), status: paymentStatus }))
    .describe('What of it can no longer be paid, with its status after this call (canceled; or expired, failed, canceled before).'),
});
type Result = z.output<typeof output>;

interface Plan extends CallPlan {
  invoiceId: string;
  /** One link or checkout; null: everything of the invoice. */
  only: { linkId: string } | { paymentId: string } | null;
}

function notMadeHere(what: string, field: string): ToolError {
  return new ToolError('not_found', `This server made no ${what}; it withdraws only the pay links and checkouts it created for invoices (see get_payment_status by invoice_id).`, { field });
}

function targetsOf(items: InvoicePayment[], only: Plan['only']): InvoicePayment[] {
  if (only === null) return items;
  return items.filter((item) => ('linkId' in only ? item.linkId === only.linkId : item.kind === 'checkout' && item.paymentId === only.paymentId));
}

export const cancelInvoicePayment = defineTool<Args, Plan, Result>({
  name: 'cancel_invoice_payment',
  title: 'Withdraw an invoice\'s pay link',
  description:
    'Makes what an invoice can still be paid with unpayable: archives its open payment links and cancels its open checkouts at Mollie, for an invoice that was corrected, credited or paid some other way. ' +
    'Give invoice_id for everything of the invoice, or one payment_link_id or payment_id. Already canceled or expired is not an error. ' +
    'Paid, or a payment under way, is a conflict naming it: refund a paid payment instead.',
  input,
  output,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  capabilities: { movesMoney: false, redirects: false, readsAuditLog: false, approvable: false, actsOnPayments: false, withdrawsLinks: true },

  describe(args) {
    if (args.payment_link_id !== undefined) return `withdraw payment link ${args.payment_link_id}`;
    if (args.payment_id !== undefined) return `cancel checkout ${args.payment_id}`;
    return `withdraw the pay links of invoice ${args.invoice_id ?? ''}`;
  },

  async prepare(args, context) {
    let invoice: string;
    let only: Plan['only'] = null;
    if (args.payment_link_id !== undefined) {
      const record = context.payments.getLink(args.payment_link_id);
      if (!record || record.mode !== context.mollie.mode) throw notMadeHere(`payment link ${args.payment_link_id}`, 'payment_link_id');
      invoice = record.invoiceId;
      only = { linkId: record.linkId };
    } else if (args.payment_id !== undefined) {
      const record = context.payments.get(args.payment_id);
      if (!record || record.mode !== context.mollie.mode) throw notMadeHere(`payment ${args.payment_id}`, 'payment_id');
      invoice = record.invoiceId;
      only = record.linkId !== null ? { linkId: record.linkId } : { paymentId: record.paymentId };
    } else {
      invoice = args.invoice_id ?? '';
    }
    return {
      money: null,
      redirectUrl: null,
      invoiceId: invoice,
      paymentId: args.payment_id ?? null,
      paymentLinkId: args.payment_link_id ?? null,
      idempotencyKey: null,
      only,
    };
  },

  async run(plan, context) {
    const lock = await context.locks.acquire(plan.invoiceId, context.mollie.mode, context.callId, context.caller.agent);
    try {
      // A creation left unfinished may have made a link: it is completed first, so it is withdrawn with the rest.
      if (lock.leftover) {
        await completeCreation(context, plan.invoiceId, lock.leftover);
        lock.creationSettled();
      }
      const items = await readInvoice(context, plan.invoiceId);
      if (items.length === 0) throw new ToolError('not_found', `This server has created no pay link for invoice ${plan.invoiceId} (in ${context.mollie.mode} mode); nothing to withdraw.`, { field: 'invoice_id' });
      return await withdrawTargets(plan, targetsOf(items, plan.only), context, () => lock.assertHeld());
    } finally {
      await lock.release();
    }
  },

  async reconcile(call, context) {
    if (call.invoiceId === null) return { happened: false, done: 'the decision names no invoice, so nothing was withdrawn', paymentId: null, refundId: null };
    const items = await readInvoice(context, call.invoiceId);
    const payable = items.filter(isPayable);
    const states = items.map((item) => `${item.linkId ?? item.paymentId} is ${item.status}`).join(', ');
    return payable.length === 0
      ? { happened: true, done: `nothing of invoice ${call.invoiceId} can be paid now (${states}; read from Mollie after a restart)`, paymentId: null, refundId: null }
      : { happened: false, done: `${payable.map(describeItem).join(', ')} can still be paid (read from Mollie after a restart): it did not happen`, paymentId: null, refundId: null };
  },
});

async function withdrawTargets(plan: Plan, targets: InvoicePayment[], context: ToolContext, stillOurs: () => void) {
  const others = targets.filter((item) => item.agent !== context.caller.agent && isPayable(item));
  if (others.length > 0 && context.caller.logScope !== 'all') {
    throw new ToolError(
      'conflict',
      `${others.map((item) => `${describeItem(item)} of invoice ${plan.invoiceId} was made by agent "${item.agent}"`).join('; ')}; an agent withdraws only its own pay links (unless its policy gives cancel_invoice_payment scope: all). Nothing was withdrawn.`,
      { field: plan.only === null ? 'invoice_id' : 'linkId' in plan.only ? 'payment_link_id' : 'payment_id' },
    );
  }
  const underWay = targets.find(isUnderWay);
  if (underWay) {
    throw new ToolError('conflict', `A payment through ${describeItem(underWay)} of invoice ${plan.invoiceId} is under way (${underWay.status}); nothing was withdrawn. Check again with get_payment_status once it has settled, and refund it if it is paid.`, { retryable: true, field: 'invoice_id' });
  }
  const payable = targets.filter(isPayable);
  const paid = targets.filter((item) => item.status === 'paid');
  if (payable.length === 0 && paid.length > 0) {
    throw new ToolError('conflict', `${paid.map(describeItem).join(', ')} of invoice ${plan.invoiceId} ${paid.length > 1 ? 'are' : 'is'} already paid, and nothing of it can still be paid; nothing was withdrawn. Refund the payment (refund with its payment_id) if the customer should get money back.`, { field: plan.only === null ? 'invoice_id' : 'linkId' in plan.only ? 'payment_link_id' : 'payment_id' });
  }
  const after = new Map<InvoicePayment, InvoicePayment>();
  for (const item of payable) after.set(item, await withdraw(context, item, stillOurs));
  const canceled = targets.filter((item) => item.status !== 'paid').map((item) => after.get(item) ?? item);
  const withdrawn = payable.map((item) => `${describeItem(item)} (${after.get(item)!.status})`);
  const result: Result = {
    invoice_id: plan.invoiceId,
    canceled: canceled.map((item) => ({ kind: item.kind, payment_link_id: item.linkId, payment_id: item.paymentId, status: item.status })),
  };
  const single = targets.length === 1 ? targets[0]! : null;
  return {
    result,
    moneyMoved: false,
    done: withdrawn.length > 0
      ? `withdrew ${withdrawn.join(' and ')} of invoice ${plan.invoiceId}`
      : `nothing of invoice ${plan.invoiceId} could still be paid (${canceled.map((item) => `${item.linkId ?? item.paymentId} ${item.status}`).join(', ') || 'none'}); nothing to do`,
    invoiceId: plan.invoiceId,
    paymentId: single?.kind === 'checkout' ? single.paymentId : null,
    paymentLinkId: single?.linkId ?? null,
    refundId: null,
  };
}
