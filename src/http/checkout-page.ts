/**
 * The simulator's checkout page, like Mollie's own test-mode checkout: it shows what the customer is asked to pay and
 * lets whoever tries the server choose what the "customer" does. Choosing runs the same path as a real webhook, so
 * get_payment_status and list_logs change exactly as they would with Mollie. Served only with --simulator.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MollieError } from '../mollie/errors.js';
import type { Payment } from '../mollie/port.js';
import type { CustomerOutcome, MollieSimulator } from '../mollie/simulator.js';
import type { PaymentRecords } from '../payments/payment-records.js';
import type { MollieWebhook } from '../webhooks/mollie-webhook.js';

export const CHECKOUT_PATH = '/checkout/';

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

function paymentPage(payment: Payment, invoiceId: string | null): string {
  const rows = [
    ['Invoice', invoiceId ?? '(unknown)'],
    ['Description', payment.description],
    ['Payment', payment.id],
    ['Status', payment.status],
  ]
    .map(([term, value]) => `<dt>${escapeHtml(term!)}</dt><dd data-field="${escapeHtml(term!.toLowerCase())}">${escapeHtml(value!)}</dd>`)
    .join('\n');
  const amount = `<p class="amount" data-field="amount">${escapeHtml(payment.amount.value)} ${escapeHtml(payment.amount.currency)}</p>`;
  const actions =
    payment.status === 'open'
      ? `<form method="post" action="${CHECKOUT_PATH}${encodeURIComponent(payment.id)}">
${OUTCOMES.map(({ outcome, label }) => `<button type="submit" name="outcome" value="${outcome}">${label}</button>`).join('\n')}
</form>`
      : `<p data-field="result">This payment is ${escapeHtml(payment.status)}.${
          payment.redirectUrl ? ` <a href="${escapeHtml(payment.redirectUrl)}">Back to the shop</a>` : ''
        }</p>`;
  return page(`Pay ${payment.amount.value} ${payment.amount.currency}`, `<h1>Test checkout</h1>\n${amount}\n<dl>\n${rows}\n</dl>\n${actions}`);
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, HEADERS).end(html);
}

export class CheckoutPage {
  constructor(private readonly deps: CheckoutDeps) {}

  /** GET /checkout/:id and POST /checkout/:id with `outcome=paid|failed|canceled|expired`. */
  async handle(req: IncomingMessage, res: ServerResponse, paymentId: string, form: URLSearchParams | null): Promise<void> {
    let payment: Payment;
    try {
      payment = await this.deps.simulator.getPayment(paymentId);
    } catch (error) {
      if (error instanceof MollieError) {
        send(res, 404, page('No such payment', '<h1>No such payment</h1><p>This checkout link does not belong to a payment of this simulator. Payments are forgotten when the server restarts.</p>'));
        return;
      }
      throw error;
    }
    const invoiceId = this.deps.payments.get(paymentId)?.invoiceId ?? (typeof payment.metadata?.invoice_id === 'string' ? payment.metadata.invoice_id : null);
    if (req.method === 'GET' || req.method === 'HEAD') {
      send(res, 200, paymentPage(payment, invoiceId));
      return;
    }
    const outcome = OUTCOMES.find((candidate) => candidate.outcome === form?.get('outcome'))?.outcome;
    if (!outcome) {
      send(res, 400, page('Choose an outcome', '<h1>Choose an outcome</h1><p>Send outcome=paid, failed, canceled or expired.</p>'));
      return;
    }
    if (payment.status !== 'open') {
      send(res, 409, paymentPage(payment, invoiceId));
      return;
    }
    this.deps.simulator.simulate(paymentId, outcome);
    await this.deps.webhook.receive(paymentId, 'simulator checkout');
    res.writeHead(303, { Location: `${CHECKOUT_PATH}${encodeURIComponent(paymentId)}`, 'Cache-Control': 'no-store' }).end();
  }
}
