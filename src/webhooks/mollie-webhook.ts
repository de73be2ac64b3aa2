/**
 * Mollie's webhook: a POST with nothing but `id=tr_...`. Anyone can send one, so the body is only a hint: the payment
 * is fetched from Mollie and that answer is what counts. A payment made through one of this server's payment links
 * carries no metadata and no pointer back to the link: its link, and so its invoice, is found by asking Mollie for the
 * payments of this server's links, never from the request. Every notification is an audit call of the actor
 * `mollie-webhook`; the answer never tells the sender whether the id meant anything.
 */
import { randomUUID } from '../crypto-on-demand.js';
import type { Logger } from 'pino';
import type { AuditFields, AuditLog } from '../audit/audit-log.js';
import { quoted } from '../audit/printable.js';
import { MollieError } from '../mollie/errors.js';
import { isResourceId, type MolliePort } from '../mollie/port.js';
import { findLinkOf, MAX_LINKS_ASKED, readLink } from '../payments/invoice-payments.js';
import type { PaymentRecords } from '../payments/payment-records.js';

export const WEBHOOK_ACTOR = 'mollie-webhook';
export type WebhookSender = 'mollie' | 'simulator checkout' | 'simulate command';
const RULE = 'POST /webhooks/mollie: the payment is fetched from Mollie; the body is never trusted';

export interface WebhookDeps {
  mollie: MolliePort;
  payments: PaymentRecords;
  audit: AuditLog;
  logger: Logger;
  clock?: () => Date;
}

/** 200: handled (whatever the id was); 503: Mollie could not be asked or the log not written, so Mollie should retry. */
export interface WebhookAnswer {
  status: 200 | 503;
  auditId: string;
}

export class MollieWebhook {
  constructor(private readonly deps: WebhookDeps) {}

  /** `via` says who delivered it: Mollie itself, or the simulator's checkout page or `simulate` command playing Mollie. */
  async receive(id: string | null, via: WebhookSender): Promise<WebhookAnswer> {
    const started = performance.now();
    const callId = randomUUID();
    const shown = id === null ? '(none)' : id.slice(0, 64);
    const base = { call_id: callId, agent: WEBHOOK_ACTOR, transport: via === 'mollie' ? 'http' : 'simulator', tool: null, client_name: null };
    const log = this.deps.logger.child({ audit_id: callId, actor: WEBHOOK_ACTOR });
    const outcome = (fields: Partial<AuditFields>): Promise<unknown> =>
      this.deps.audit.appendWhenFree({ ...base, kind: 'outcome', duration_ms: Math.round(performance.now() - started), ...fields });

    if (!isResourceId('payment', id)) {
      try {
        await this.deps.audit.appendRefusalWhenFree(
          base,
          { reason: 'invalid_input', reason_message: `The webhook named no payment id (got ${quoted(shown)}).`, rule: RULE, action: 'report a payment change', arguments: JSON.stringify({ id: shown }) },
          { code: 'invalid_input', message: 'Not a payment id; ignored.' },
          Math.round(performance.now() - started),
        );
      } catch (error) {
        log.error({ err: error }, 'Could not write the audit rows of a malformed webhook');
      }
      log.warn('A webhook without a payment id was ignored');
      return { status: 200, auditId: callId };
    }

    try {
      await this.deps.audit.appendWhenFree({
        ...base,
        kind: 'decision',
        decision: 'allowed',
        reason: 'webhook',
        reason_message: `${via === 'mollie' ? 'Mollie' : via === 'simulate command' ? 'The simulate command' : "The simulator's checkout page"} reported a change to payment ${id}; asking Mollie what it is.`,
        rule: RULE,
        action: `report a change to payment ${id}`,
        arguments: JSON.stringify({ id }),
        payment_id: id,
      });
    } catch (error) {
      log.error({ err: error }, 'Could not write the decision row of a webhook; asking Mollie to retry');
      return { status: 503, auditId: callId };
    }

    let record = this.deps.payments.get(id);
    if (!record && !this.deps.payments.hasPayableLinks(this.deps.mollie.mode)) {
      // Neither made here nor possibly paid through a link of ours: Mollie is not asked (anyone can post any id).
      try {
        await outcome({ outcome: 'error', error_code: 'not_found', error_message: `Payment ${id} was not made by this server, and none of its payment links takes payments; nothing changed, and Mollie was not asked.`, payment_id: id });
      } catch (error) {
        log.error({ err: error }, 'Could not write the outcome row of a webhook');
      }
      log.info({ payment_id: id }, 'Webhook for a payment this server did not make; ignored');
      return { status: 200, auditId: callId };
    }

    try {
      const payment = await this.deps.mollie.getPayment(id);
      const context = { mollie: this.deps.mollie, payments: this.deps.payments, clock: this.deps.clock ?? (() => new Date()) };
      const was = record?.status ?? null;
      const search = record ? null : await findLinkOf(context, payment);
      const link = record?.linkId ? this.deps.payments.getLink(record.linkId) : (search?.link ?? null);
      if (link) {
        // Reading the link records the payment under it (and its invoice) and derives the link's status anew.
        await readLink(context, link.linkId);
        record = this.deps.payments.get(id);
      }
      if (!record) {
        const looked = search && !search.complete ? ` (among the ${MAX_LINKS_ASKED} newest of its links taking ${payment.amount.value} ${payment.amount.currency}; an older one is matched when its invoice is read)` : '';
        await outcome({ outcome: 'error', error_code: 'not_found', error_message: `Payment ${id} was not made by this server, nor through one of its payment links${looked}; nothing changed.`, payment_id: id });
        log.info({ payment_id: id }, 'Webhook for a payment this server did not make; ignored');
        return { status: 200, auditId: callId };
      }
      this.deps.payments.refresh(payment);
      const change = was === payment.status ? `is still ${payment.status}` : was === null ? `is ${payment.status}` : `is now ${payment.status} (was ${was})`;
      const linkStatus = link ? this.deps.payments.getLink(link.linkId)?.status : undefined;
      const through = link ? ` through payment link ${link.linkId}${linkStatus ? ` (now ${linkStatus})` : ''}` : '';
      await outcome({
        outcome: 'ok',
        action: `payment ${id}${through} of invoice ${record.invoiceId} (${payment.amount.value} ${payment.amount.currency}) ${change}`,
        // The payment was named in the decision row; the link, where there is one, is named here.
        payment_id: link ? link.linkId : id,
        invoice_id: record.invoiceId,
      });
      log.info({ payment_id: id, payment_link_id: link?.linkId, invoice_id: record.invoiceId, status: payment.status, was }, 'Payment status from webhook');
      return { status: 200, auditId: callId };
    } catch (error) {
      const known = error instanceof MollieError;
      const notFound = known && error.code === 'not_found';
      const message = notFound ? `Mollie knows no payment ${id}; nothing changed.` : `Could not ask Mollie about payment ${id}: ${known ? error.message : 'unexpected error'}. Mollie will retry the webhook.`;
      try {
        await outcome({ outcome: 'error', error_code: known ? error.code : 'mollie_unavailable', error_message: message, payment_id: id });
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the outcome row of a webhook');
      }
      if (notFound) {
        log.info({ payment_id: id }, 'Webhook for a payment Mollie does not know; ignored');
        return { status: 200, auditId: callId };
      }
      log.warn({ err: known ? undefined : error, payment_id: id, code: known ? error.code : null }, 'Webhook could not be handled; Mollie will retry');
      return { status: 503, auditId: callId };
    }
  }
}
