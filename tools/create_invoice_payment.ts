/**
 * Issue a way to pay an invoice: a Mollie payment link by default (payable for days, until its expiry), or a checkout
 * for a customer ready to pay now. One payable thing per invoice: the same invoice, amount and kind get the one that
 * already exists; a different amount first makes the old one unpayable (link archived, checkout canceled), so a
 * customer can never pay an old amount; a payment paid or under way stops everything. Calls on one invoice take turns
 * (invoice-locks.ts), and a creation whose answer was lost is repeated with its own Idempotency-Key before anything else.
 */
import { createHash } from '../src/crypto-on-demand.js';
import { z } from 'zod';
import { MollieError } from '../src/mollie/errors.js';
import { formatMinorUnits, parseAmount, toAmount } from '../src/mollie/money.js';
import type { CreatePaymentLinkRequest, CreatePaymentRequest, Payment, PaymentLink } from '../src/mollie/port.js';
import type { PaymentKind } from '../src/payments/invoice-locks.js';
import { completeCreation, describeItem, isPayable, isUnderWay, readInvoice, withdraw, type InvoicePayment } from '../src/payments/invoice-payments.js';
import { defineTool, type CallPlan, type ToolContext } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { amountOut, checkAmount, currency, decimalAmount, description, expiryDate, invoiceId, isoTime, paymentKind, paymentStatus } from './fields.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MAX_LINK_DAYS = 365;

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
    kind: paymentKind
      .default('payment_link')
      .describe('"payment_link" (the default): a pay link for an invoice sent by e-mail or chat, payable until expires_at. "checkout": a checkout for a customer paying right now; it expires in about 15 minutes.'),
    expires_at: expiryDate
      .optional()
      .describe('Payment links only: when the link stops being payable, a date ("2027-01-31", the end of that day UTC) or a date-time with offset; 1 hour to 365 days ahead. Default: the server\'s MOLLIE_MCP_LINK_VALID_DAYS (30) days from now.'),
    locale: z
      .string()
      .regex(/^[a-z]{2}_[A-Z]{2}$/, 'locale must look like "nl_NL" or "en_US"')
      .optional()
      .describe("Checkouts only: the language of Mollie's checkout, e.g. nl_NL (payment links have none)."),
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
    if (args.kind === 'checkout' && args.expires_at !== undefined) {
      context.addIssue({ code: 'custom', path: ['expires_at'], message: 'expires_at is for payment links only: a checkout (kind "checkout") expires on its own in about 15 minutes; leave expires_at out, or use kind "payment_link"' });
    }
    if (args.kind === 'payment_link' && args.locale !== undefined) {
      context.addIssue({ code: 'custom', path: ['locale'], message: 'locale is for checkouts only (kind "checkout"): Mollie\'s payment links have no locale; leave it out' });
    }
  });
type Args = z.output<typeof input>;

const output = z.strictObject({
  invoice_id: z.string(),
  kind: paymentKind,
  payment_link_id: z.string().nullable().describe('The payment link ("pl_..."); null for a checkout.'),
  payment_id: z.string().nullable().describe('The payment ("tr_..."): a checkout\'s own; for a link, the payment made through it, null until the customer starts paying.'),
  status: paymentStatus,
  amount: amountOut,
  checkout_url: z.string().nullable().describe('What to send the customer: the payment link, or the checkout URL; null once it can no longer be paid.'),
  expires_at: isoTime.nullable(),
  mode: z.enum(['test', 'live']),
  reused: z.boolean().describe('True when a payable link or checkout for the same invoice, amount and kind already existed and is returned instead of a new one.'),
  replaced: z.array(z.string()).describe('Links and checkouts of this invoice for another amount that this call made unpayable first (archived or canceled).'),
});
type Result = z.output<typeof output>;

interface Plan extends CallPlan {
  invoiceId: string;
  kind: PaymentKind;
  totalMinor: number;
  alreadyPaidMinor: number;
  amountMinor: number;
  currency: string;
  idempotencyKey: string;
  /** The invoice's links and checkouts as Mollie showed them when the call was decided. */
  items: InvoicePayment[];
  /** A payable one of the same kind and amount. */
  reuse: InvoicePayment | null;
  request: CreatePaymentLinkRequest | CreatePaymentRequest;
}

function isHttpsUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/**
 * Same invoice, amount, currency, mode and kind, and as many earlier links and checkouts: the same creation at Mollie.
 * Two identical calls racing each other therefore make one; after the invoice's earlier ones ended, a new key.
 */
export function paymentIdempotencyKey(kind: PaymentKind, invoice: string, minor: number, currencyCode: string, mode: string, earlier: number): string {
  const label = kind === 'checkout' ? 'invoice-payment' : 'invoice-link';
  const digest = createHash('sha256').update(JSON.stringify([label, invoice, minor, currencyCode, mode, earlier])).digest('hex');
  return `${kind === 'checkout' ? 'mim-pay' : 'mim-link'}-${digest.slice(0, 48)}`;
}

/** "2027-01-31": the end of that day UTC; a date-time with offset as given. */
export function expiryInstant(text: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T23:59:59Z`) : Date.parse(text);
}

/** Which links and checkouts an invoice has, to tell whether another call changed it. */
function idsOf(items: readonly InvoicePayment[]): string {
  return items.map(itemId).sort().join(' ');
}

function sameAmount(item: InvoicePayment, minor: number, currencyCode: string): boolean {
  return item.amount.currency === currencyCode && parseAmount(item.amount.value, currencyCode) === minor;
}

function resultFrom(item: InvoicePayment, mode: 'test' | 'live', reused: boolean, replaced: string[]): Result {
  return {
    invoice_id: item.invoiceId,
    kind: item.kind,
    payment_link_id: item.linkId,
    payment_id: item.paymentId,
    status: item.status,
    amount: item.amount,
    checkout_url: item.url,
    expires_at: item.expiresAt,
    mode,
    reused,
    replaced,
  };
}

/** The item's id as a person refers to it: the link's, or the checkout's. */
function itemId(item: InvoicePayment): string {
  return item.linkId ?? item.paymentId!;
}

/** Withdrawing an old link only changes what exists already: when it fails, nothing new was made. */
async function withdrawBeforeCreating(context: ToolContext, item: InvoicePayment, stillOurs: () => void): Promise<void> {
  try {
    await withdraw(context, item, stillOurs);
  } catch (error) {
    if (!(error instanceof MollieError)) throw error;
    throw new ToolError(error.code, `Could not make ${describeItem(item)} unpayable first (${error.message}); nothing new was created. Try again.`, { retryable: error.retryable, field: 'invoice_id' });
  }
}

export const createInvoicePayment = defineTool<Args, Plan, Result>({
  name: 'create_invoice_payment',
  title: 'Create a pay link for an invoice',
  description:
    'Creates a Mollie pay link for an invoice and returns checkout_url, the link to send to the customer. By default a payment link that stays payable ' +
    'until expires_at (default 30 days), for an invoice sent by e-mail or chat; kind "checkout" makes a checkout for a customer paying right now (it expires in about 15 minutes). ' +
    'Safe to repeat: if the invoice already has a payable one for the same amount and kind, that one is returned with reused: true. ' +
    'When part of the invoice was already paid, pass amount_already_paid and the link asks only for the rest; the invoice\'s old link for another amount is made unpayable first and listed in replaced. ' +
    'Amounts are decimal strings such as "120.00".',
  input,
  output,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  capabilities: { movesMoney: true, redirects: true, readsAuditLog: false, approvable: false, actsOnPayments: false, withdrawsLinks: true },

  requested(args) {
    const total = parseAmount(args.amount, args.currency);
    const paid = args.amount_already_paid === undefined ? 0 : parseAmount(args.amount_already_paid, args.currency, { allowZero: true });
    return { value: formatMinorUnits(total - paid, args.currency), currency: args.currency };
  },

  describe(args) {
    const paid = args.amount_already_paid ? ` (${args.amount_already_paid} already paid)` : '';
    return `create a ${args.kind === 'checkout' ? 'checkout' : 'pay link'} for invoice ${args.invoice_id} of ${args.amount} ${args.currency}${paid}`;
  },

  async prepare(args, context) {
    const total = parseAmount(args.amount, args.currency);
    const alreadyPaid = args.amount_already_paid === undefined ? 0 : parseAmount(args.amount_already_paid, args.currency, { allowZero: true });
    const asked = total - alreadyPaid;
    const mode = context.mollie.mode;
    const now = context.clock().getTime();

    let expiresAt: string | undefined;
    if (args.kind === 'payment_link') {
      const at = args.expires_at === undefined ? now + context.settings.linkValidDays * DAY_MS : expiryInstant(args.expires_at);
      if (at < now + HOUR_MS) throw new ToolError('invalid_input', `expires_at ${args.expires_at} is less than an hour from now (${new Date(now).toISOString().slice(0, 16)}Z): give a later date, at most ${MAX_LINK_DAYS} days ahead.`, { field: 'expires_at' });
      if (at > now + MAX_LINK_DAYS * DAY_MS) throw new ToolError('invalid_input', `expires_at ${args.expires_at} is more than ${MAX_LINK_DAYS} days ahead: give a date before ${new Date(now + MAX_LINK_DAYS * DAY_MS).toISOString().slice(0, 10)}.`, { field: 'expires_at' });
      // Whole seconds, as Mollie writes its own times.
      expiresAt = new Date(Math.floor(at / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    }

    // Local statuses are a cache: the invoice's links and checkouts that could still change are read from Mollie.
    const items = await readInvoice(context, args.invoice_id);
    refuseIfPaid(items, args, total, alreadyPaid);
    const reuse = items.find((item) => item.kind === args.kind && (isPayable(item) || isUnderWay(item)) && sameAmount(item, asked, args.currency)) ?? null;

    const mollieRedirectUrl = args.redirect_url ?? context.settings.redirectUrl ?? undefined;
    if (args.kind === 'checkout' && mollieRedirectUrl === undefined && context.mollie.kind === 'mollie' && reuse === null) {
      throw new ToolError(
        'invalid_input',
        'Mollie needs a redirect URL for a checkout, for the customer after paying: pass redirect_url, or have the operator set MOLLIE_MCP_REDIRECT_URL.',
        { field: 'redirect_url' },
      );
    }
    const amount = toAmount(asked, args.currency);
    const descriptionText = args.description ?? `Invoice ${args.invoice_id}`;
    const urls = {
      ...(mollieRedirectUrl !== undefined ? { redirectUrl: mollieRedirectUrl } : {}),
      ...(context.settings.webhookUrl !== null ? { webhookUrl: context.settings.webhookUrl } : {}),
    };
    const request: CreatePaymentLinkRequest | CreatePaymentRequest =
      args.kind === 'payment_link'
        ? { amount, description: descriptionText, expiresAt: expiresAt!, ...urls }
        : { amount, description: descriptionText, ...urls, ...(args.locale !== undefined ? { locale: args.locale } : {}), metadata: { invoice_id: args.invoice_id } };
    return {
      money: { minor: asked, currency: args.currency, ...(reuse ? { reuse: true } : {}) },
      redirectUrl: args.redirect_url ?? null,
      invoiceId: args.invoice_id,
      paymentId: reuse?.paymentId ?? null,
      paymentLinkId: reuse?.linkId ?? null,
      idempotencyKey: paymentIdempotencyKey(args.kind, args.invoice_id, asked, args.currency, mode, items.length),
      kind: args.kind,
      totalMinor: total,
      alreadyPaidMinor: alreadyPaid,
      amountMinor: asked,
      currency: args.currency,
      items,
      reuse,
      request,
    };
  },

  async run(plan, context) {
    const mode = context.mollie.mode;
    const lock = await context.locks.acquire(plan.invoiceId, mode, context.callId, context.caller.agent);
    try {
      if (lock.leftover) {
        await completeCreation(context, plan.invoiceId, lock.leftover);
        lock.creationSettled();
      }
      // With the invoice's turn, Mollie is asked again: what prepare read may be stale, as another call may have
      // replaced the invoice's link while it read.
      const items = await readInvoice(context, plan.invoiceId);
      refuseIfPaid(items, { invoice_id: plan.invoiceId, currency: plan.currency }, plan.totalMinor, plan.alreadyPaidMinor);

      const same = items.find((item) => item.kind === plan.kind && (isPayable(item) || isUnderWay(item)) && sameAmount(item, plan.amountMinor, plan.currency));
      if (same) {
        return {
          result: resultFrom(same, mode, true, []),
          moneyMoved: false,
          done: `reused the ${isPayable(same) ? 'payable' : same.status} ${describeItem(same)}`,
          invoiceId: plan.invoiceId,
          paymentId: same.paymentId,
          paymentLinkId: same.linkId,
          refundId: null,
        };
      }
      if (plan.reuse) {
        throw new ToolError('conflict', `The ${describeItem(plan.reuse)} of invoice ${plan.invoiceId} stopped being payable just now (${items.find((item) => itemId(item) === itemId(plan.reuse!))?.status ?? 'gone'}); nothing was created. Call again to make a new one.`, { retryable: true, field: 'invoice_id' });
      }
      const underWay = items.find(isUnderWay);
      if (underWay) {
        throw new ToolError('conflict', `A payment through ${describeItem(underWay)} of invoice ${plan.invoiceId} (${underWay.amount.value} ${underWay.amount.currency}) is under way (${underWay.status}); nothing new was made, so the customer cannot pay twice. Check again with get_payment_status once it has settled.`, { retryable: true, field: 'invoice_id' });
      }
      if (idsOf(items) !== idsOf(plan.items)) {
        throw new ToolError('conflict', `Invoice ${plan.invoiceId} changed while this call waited for its turn (another call made or withdrew a pay link); nothing was done. Call again.`, { retryable: true, field: 'invoice_id' });
      }
      const payable = items.filter(isPayable);
      const others = payable.filter((item) => item.agent !== context.caller.agent);
      if (others.length > 0 && context.caller.logScope !== 'all') {
        throw new ToolError(
          'conflict',
          `Invoice ${plan.invoiceId} has ${others.map((item) => `${describeItem(item)} made by agent "${item.agent}"`).join(', ')}, still payable; an agent replaces only its own pay links (unless its policy gives create_invoice_payment scope: all). Nothing was done.`,
          { field: 'invoice_id' },
        );
      }

      const replaced: string[] = [];
      for (const item of payable) {
        await withdrawBeforeCreating(context, item, () => lock.assertHeld());
        replaced.push(itemId(item));
      }

      // Written and synced before it is sent: from here on, only Mollie's answer, recorded, or its certain refusal lets
      // the creation go; anything else (a lost answer, a crash, a failure to record) leaves it for the next holder.
      await lock.recordCreation(plan.kind, plan.idempotencyKey, plan.request);
      let made: PaymentLink | Payment;
      try {
        made = await send(plan, context);
      } catch (error) {
        if ((error instanceof MollieError || error instanceof ToolError) && error.effect === 'none') lock.creationSettled();
        throw error;
      }
      const created = record(made, plan, context);
      lock.creationSettled();
      const what = created.kind === 'payment_link' ? `payment link ${created.linkId}` : `checkout ${created.paymentId}`;
      return {
        result: resultFrom(created, mode, false, replaced),
        moneyMoved: true,
        done: `created ${what} (${created.status}${created.expiresAt ? `, payable until ${created.expiresAt}` : ''})${replaced.length > 0 ? `, after making ${replaced.join(', ')} unpayable` : ''}`,
        invoiceId: plan.invoiceId,
        paymentId: created.paymentId,
        paymentLinkId: created.linkId,
        refundId: null,
      };
    } finally {
      await lock.release();
    }
  },

  async reconcile(call, context) {
    const key = call.idempotencyKey;
    if (call.invoiceId === null || key === null) {
      return { happened: false, done: 'the decision names no invoice or key, so nothing can be matched', paymentId: null, refundId: null };
    }
    const invoice = call.invoiceId;
    // By the call's own id: an identical retry shares the key, and what it made is the retry's, not this call's.
    const made = context.payments.madeByCall(call.callId);
    if (made) return reconciled(made, 'recorded before the server stopped');
    // The creation was sent and its answer lost: take the invoice's lock and complete it with its own key.
    let lock;
    try {
      lock = await context.locks.acquire(invoice, context.mollie.mode, `reconcile-${call.callId}`, call.agent, 0);
    } catch {
      throw new ToolError('conflict', `invoice ${invoice} is held by a running call; its creation is completed there`, { retryable: true, effect: 'unknown' });
    }
    try {
      const creation = lock.leftover;
      if (creation === null || creation.callId !== call.callId) {
        return {
          happened: false,
          done: `no creation was sent to Mollie for invoice ${invoice}: it did not happen (an old pay link may have been withdrawn first; get_payment_status tells)`,
          paymentId: null,
          refundId: null,
        };
      }
      const made = await completeCreation(context, invoice, creation);
      lock.creationSettled();
      if (made === null) return { happened: false, done: `Mollie has no ${creation.kind === 'checkout' ? 'checkout' : 'payment link'} from this call for invoice ${invoice}: it did not happen`, paymentId: null, refundId: null };
      return reconciled(made, 'completed with its own Idempotency-Key after the server stopped');
    } finally {
      await lock.release();
    }
  },
});

function reconciled({ linkId, paymentId }: { linkId: string | null; paymentId: string | null }, how: string) {
  return {
    happened: true,
    done: `created ${linkId !== null ? `payment link ${linkId}` : `checkout ${paymentId}`} (${how})`,
    paymentId: linkId ?? paymentId,
    refundId: null,
  };
}

/** Paid through this server already: more than the caller says was paid means the invoice is done, or needs less. */
function refuseIfPaid(items: InvoicePayment[], args: { invoice_id: string; currency: string }, total: number, alreadyPaid: number): void {
  const paidElsewhere = items.filter((item) => item.status === 'paid' && item.amount.currency !== args.currency);
  if (paidElsewhere.length > 0) {
    // Amounts in two currencies cannot be netted: a link in another currency would ask the whole invoice again.
    const first = paidElsewhere[0]!;
    throw new ToolError(
      'conflict',
      `Invoice ${args.invoice_id} was paid in ${first.amount.currency} through this server (${paidElsewhere.map((item) => `${item.paymentId ?? item.linkId}: ${item.amount.value} ${item.amount.currency}`).join(', ')}); no pay link in ${args.currency} was created. Ask for any remainder in ${first.amount.currency}, with amount_already_paid.`,
      { field: 'currency' },
    );
  }
  const paidHere = items.filter((item) => item.status === 'paid' && item.amount.currency === args.currency);
  const paidMinor = paidHere.reduce((sum, item) => sum + parseAmount(item.amount.value, item.amount.currency), 0);
  if (paidMinor <= alreadyPaid) return;
  const paidText = `${formatMinorUnits(paidMinor, args.currency)} ${args.currency}`;
  const left = total - paidMinor;
  const which = paidHere.map((item) => item.paymentId ?? item.linkId).join(', ');
  throw new ToolError(
    'conflict',
    left > 0
      ? `Invoice ${args.invoice_id} already has ${paidText} paid through this server (${which}). Pass amount_already_paid "${formatMinorUnits(paidMinor, args.currency)}" to ask only for the remaining ${formatMinorUnits(left, args.currency)} ${args.currency}.`
      : `Invoice ${args.invoice_id} is already paid in full through this server (${which}); no new pay link was created.`,
    { field: 'amount_already_paid' },
  );
}

function send(plan: Plan, context: ToolContext): Promise<PaymentLink | Payment> {
  return plan.kind === 'payment_link'
    ? context.mollie.createPaymentLink(plan.request as CreatePaymentLinkRequest, { idempotencyKey: plan.idempotencyKey })
    : context.mollie.createPayment(plan.request as CreatePaymentRequest, { idempotencyKey: plan.idempotencyKey });
}

/** What Mollie made, recorded as this call's; never something an earlier call made and that has ended since. */
function record(made: PaymentLink | Payment, plan: Plan, context: ToolContext): InvoicePayment {
  if (plan.kind === 'payment_link') {
    const link = made as PaymentLink;
    const recordedNow = context.payments.addLink(link, plan.invoiceId, context.caller.agent, plan.idempotencyKey, link.archived ? 'canceled' : 'open', context.callId);
    if (!recordedNow || link.archived) {
      throw new ToolError('conflict', `Mollie returned payment link ${link.id}, made earlier for this invoice and amount and no longer payable; nothing new was created. Call again.`, { retryable: true, field: 'invoice_id' });
    }
    return { kind: 'payment_link', linkId: link.id, paymentId: null, amount: link.amount!, status: 'open', url: link.url, expiresAt: link.expiresAt, paidAt: null, createdAt: link.createdAt, invoiceId: plan.invoiceId, agent: context.caller.agent };
  }
  const payment = made as Payment;
  if (!context.payments.add(payment, plan.invoiceId, context.caller.agent, plan.idempotencyKey, null, context.callId)) {
    throw new ToolError('conflict', `Mollie returned checkout ${payment.id} (${payment.status}), made earlier for this invoice and amount; nothing new was created. Call again.`, { retryable: true, field: 'invoice_id' });
  }
  return {
    kind: 'checkout',
    linkId: null,
    paymentId: payment.id,
    amount: payment.amount,
    status: payment.status,
    url: payment.status === 'open' ? payment.checkoutUrl : null,
    expiresAt: payment.expiresAt,
    paidAt: payment.paidAt,
    createdAt: payment.createdAt,
    invoiceId: plan.invoiceId,
    agent: context.caller.agent,
  };
}
