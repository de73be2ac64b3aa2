/**
 * The simulator's checkout page, like Mollie's own test-mode checkout: it shows what the customer is asked to pay and
 * lets whoever tries the server choose what the "customer" does, for a checkout (`/checkout/tr_...`) or a payment link
 * (`/checkout/pl_...`). Choosing runs the same path as a real webhook, so get_payment_status and list_logs change
 * exactly as they would with Mollie. Served only with --simulator.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CustomerRefused, playCustomer } from '../mollie/simulated-customer.js';
import { BodyTooLarge, readBody } from './http-io.js';
import { MollieError } from '../mollie/errors.js';
import type { Payment, PaymentLink } from '../mollie/port.js';
import type { CustomerOutcome, MollieSimulator } from '../mollie/simulator.js';
import { deriveLinkState } from '../payments/link-status.js';
import type { PaymentRecords } from '../payments/payment-records.js';
import type { MollieWebhook } from '../webhooks/mollie-webhook.js';

export const CHECKOUT_PATH = '/checkout/';
/** A form with one field: anything longer is not the page's. */
const MAX_FORM_BYTES = 4096;

const OUTCOMES: { outcome: CustomerOutcome; label: string }[] = [
  { outcome: 'paid', label: 'Pay' },
  { outcome: 'failed', label: 'Fail' },
  { outcome: 'canceled', label: 'Cancel' },
  { outcome: 'expired', label: 'Let it expire' },
];

const HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  // Agents write the description and invoice id; even escaped, nothing on this page may run or be framed.
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  // Not no-referrer: with it Chromium sends `Origin: null` on the form's POST, which the origin check rightly refuses.
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

export interface CheckoutDeps {
  simulator: MollieSimulator;
  payments: PaymentRecords;
  webhook: MollieWebhook;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #1a1a1a; }
.banner { background: #fff4d6; border: 1px solid #e8c66a; padding: .5rem .75rem; border-radius: 6px; font-size: .9rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; } dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
.amount { font-size: 1.6rem; font-weight: 600; } form { display: flex; gap: .5rem; flex-wrap: wrap; margin-top: 1.5rem; }
button { font: inherit; padding: .5rem 1rem; border-radius: 6px; border: 1px solid #888; background: #fff; cursor: pointer; }
button[value=paid] { background: #0a7d34; border-color: #0a7d34; color: #fff; }
</style></head><body>
<p class="banner">Mollie simulator: test mode, no money moves.</p>
${body}
</body></html>
`;
}

function details(rows: [string, string][]): string {
  return rows.map(([term, value]) => `<dt>${escapeHtml(term)}</dt><dd data-field="${escapeHtml(term.toLowerCase())}">${escapeHtml(value)}</dd>`).join('\n');
}

function buttons(id: string): string {
  return `<form method="post" action="${CHECKOUT_PATH}${encodeURIComponent(id)}">
${OUTCOMES.map(({ outcome, label }) => `<button type="submit" name="outcome" value="${outcome}">${label}</button>`).join('\n')}
</form>`;
}

function amountLine(value: string, currency: string): string {
  return `<p class="amount" data-field="amount">${escapeHtml(value)} ${escapeHtml(currency)}</p>`;
}

function backToShop(redirectUrl: string | null): string {
  return redirectUrl ? ` <a href="${escapeHtml(redirectUrl)}">Back to the shop</a>` : '';
}

function paymentPage(payment: Payment, invoiceId: string | null): string {
  const rows = details([
    ['Invoice', invoiceId ?? '(unknown)'],
    ['Description', payment.description],
    ['Payment', payment.id],
    ['Status', payment.status],
  ]);
  const actions =
    payment.status === 'open'
      ? buttons(payment.id)
      : `<p data-field="result">This payment is ${escapeHtml(payment.status)}.${backToShop(payment.redirectUrl)}</p>`;
  return page(`Pay ${payment.amount.value} ${payment.amount.currency}`, `<h1>Test checkout</h1>\n${amountLine(payment.amount.value, payment.amount.currency)}\n<dl>\n${rows}\n</dl>\n${actions}`);
}

function linkPage(link: PaymentLink, payments: Payment[], refusal: string | null, invoiceId: string | null, now: Date): string {
  const { status, payment } = deriveLinkState(link, payments, now);
  const amount = link.amount ?? { value: '?', currency: '' };
  const rows = details([
    ['Invoice', invoiceId ?? '(unknown)'],
    ['Description', link.description],
    ['Payment link', link.id],
    ['Status', status],
    ['Payable until', link.expiresAt ? `${new Date(link.expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'no expiry'],
    ...(payment ? ([['Last payment', `${payment.id} (${payment.status})`]] as [string, string][]) : []),
  ]);
  const actions =
    refusal === null
      ? buttons(link.id)
      : `<p data-field="result">${escapeHtml(refusal)}${status === 'paid' ? backToShop(link.redirectUrl) : ''}</p>`;
  return page(`Pay ${amount.value} ${amount.currency}`, `<h1>Test payment link</h1>\n${amountLine(amount.value, amount.currency)}\n<dl>\n${rows}\n</dl>\n${actions}`);
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, HEADERS).end(html);
}

const NOT_FOUND = page('No such payment', '<h1>No such payment</h1><p>This checkout link does not belong to a payment or payment link of this simulator.</p>');

export class CheckoutPage {
  constructor(private readonly deps: CheckoutDeps) {}

  /** A request for /checkout/:id, its form read here. */
  async serve(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    let form: URLSearchParams | null = null;
    if (req.method === 'POST') {
      try {
        form = new URLSearchParams((await readBody(req, MAX_FORM_BYTES)).toString('utf8'));
      } catch (error) {
        if (!(error instanceof BodyTooLarge)) throw error;
        res.writeHead(413, { 'Content-Type': 'text/plain' }).end('Too large.');
        return;
      }
    }
    await this.handle(req, res, id, form);
  }

  /** GET /checkout/:id and POST /checkout/:id with `outcome=paid|failed|canceled|expired`; :id is a tr_ or a pl_. */
  async handle(req: IncomingMessage, res: ServerResponse, id: string, form: URLSearchParams | null): Promise<void> {
    if (id.startsWith('pl_')) return this.handleLink(req, res, id, form);
    let payment: Payment;
    try {
      payment = await this.deps.simulator.getPayment(id);
    } catch (error) {
      if (error instanceof MollieError) return send(res, 404, NOT_FOUND);
      throw error;
    }
    const invoiceId = this.deps.payments.get(id)?.invoiceId ?? (typeof payment.metadata?.invoice_id === 'string' ? payment.metadata.invoice_id : null);
    if (req.method === 'GET' || req.method === 'HEAD') return send(res, 200, paymentPage(payment, invoiceId));
    const outcome = chosen(form);
    if (!outcome) return send(res, 400, CHOOSE);
    if (payment.status !== 'open') return send(res, 409, paymentPage(payment, invoiceId));
    if (!(await this.play(id, outcome))) return send(res, 409, paymentPage(await this.deps.simulator.getPayment(id), invoiceId));
    seeOther(res, id);
  }

  private async handleLink(req: IncomingMessage, res: ServerResponse, linkId: string, form: URLSearchParams | null): Promise<void> {
    const { simulator } = this.deps;
    let link: PaymentLink;
    try {
      link = await simulator.getPaymentLink(linkId);
    } catch (error) {
      if (error instanceof MollieError) return send(res, 404, NOT_FOUND);
      throw error;
    }
    const invoiceId = this.deps.payments.getLink(linkId)?.invoiceId ?? null;
    const show = async (status: number): Promise<void> =>
      send(res, status, linkPage(await simulator.getPaymentLink(linkId), await simulator.listPaymentLinkPayments(linkId), simulator.linkRefusal(linkId), invoiceId, simulator.currentTime()));
    if (req.method === 'GET' || req.method === 'HEAD') return show(200);
    const outcome = chosen(form);
    if (!outcome) return send(res, 400, CHOOSE);
    if (simulator.linkRefusal(link.id) !== null) return show(409);
    if (!(await this.play(linkId, outcome))) return show(409);
    seeOther(res, linkId);
  }

  /** False when another tab or process got there first: the page then shows what is the case now. */
  private async play(id: string, outcome: CustomerOutcome): Promise<boolean> {
    try {
      await playCustomer(this.deps.simulator, this.deps.webhook, id, outcome, 'simulator checkout');
      return true;
    } catch (error) {
      if (error instanceof CustomerRefused) return false;
      throw error;
    }
  }
}

const CHOOSE = page('Choose an outcome', '<h1>Choose an outcome</h1><p>Send outcome=paid, failed, canceled or expired.</p>');

function chosen(form: URLSearchParams | null): CustomerOutcome | undefined {
  return OUTCOMES.find((candidate) => candidate.outcome === form?.get('outcome'))?.outcome;
}

function seeOther(res: ServerResponse, id: string): void {
  res.writeHead(303, { Location: `${CHECKOUT_PATH}${encodeURIComponent(id)}`, 'Cache-Control': 'no-store' }).end();
}
