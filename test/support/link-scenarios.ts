/**
 * Invoice pay links end to end, the same scenarios over every transport: the built server, the MCP SDK client (which
 * checks every structuredContent against the declared outputSchema), a real SQLite file, and Mollie played by the https
 * double, whose requests show exactly what reached Mollie and in which order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { POLICY } from './engine-world.js';
import { startMollieApiDouble, type MollieApiDouble, type RecordedRequest } from './mollie-api-double.js';
import { createWorkspace, type Workspace } from './stdio-server.js';
import { openStoreForTest } from './store-under-test.js';

export type Call = (name: string, args?: Record<string, unknown>) => Promise<CallToolResult & { structuredContent: Record<string, unknown> }>;

export interface LinkHarness {
  /** clerk, allowed to create, read, cancel and refund. */
  call: Call;
  close(): Promise<void>;
}

/** The clerk of every link scenario: the in-process tests' policy, with room for a token line. */
export const CLERK_POLICY = (extra = ''): string => POLICY('clerk', extra);

export interface LinkWorld {
  double: MollieApiDouble;
  workspace: Workspace;
  /** Moves Mollie's clock (not the server's) forward. */
  advanceMollie(ms: number): void;
}

const DAY = 24 * 3_600_000;

export function errorOf(result: { structuredContent: Record<string, unknown> }): { code: string; reason?: string; message: string; field?: string | null; retryable: boolean } {
  return result.structuredContent.error as never;
}

export function auditRows(workspace: Workspace, callId: string): Record<string, unknown>[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare('SELECT * FROM audit_log WHERE call_id = ? ORDER BY seq').all(callId) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

/** What reached Mollie while `work` ran: "POST /v2/payment-links", "PATCH /v2/payment-links/pl_x", ... */
export async function sentDuring<T>(double: MollieApiDouble, work: () => Promise<T>): Promise<{ result: T; sent: RecordedRequest[] }> {
  const before = double.requests.length;
  const result = await work();
  return { result, sent: double.requests.slice(before) };
}

const writes = (sent: RecordedRequest[]) => sent.filter((request) => request.method !== 'GET').map((request) => `${request.method} ${request.path}`);

export function describeLinkScenarios(transport: string, start: (world: LinkWorld) => Promise<LinkHarness>): void {
  describe(`invoice pay links over ${transport}`, () => {
    let mollieNow = Date.now();
    let world: LinkWorld;
    let clerk: LinkHarness;
    let double: MollieApiDouble;

    beforeAll(async () => {
      double = await startMollieApiDouble({ now: () => new Date(mollieNow) });
      world = { double, workspace: createWorkspace({ clerk: CLERK_POLICY() }), advanceMollie: (ms) => (mollieNow += ms) };
      clerk = await start(world);
    });

    afterAll(async () => {
      await clerk?.close();
      await double?.close();
      world?.workspace.remove();
    });

    const link = async (invoice: string, amount: string, extra: Record<string, unknown> = {}) => {
      const made = await clerk.call('create_invoice_payment', { invoice_id: invoice, amount, ...extra });
      expect(made.isError, JSON.stringify(made.structuredContent)).toBeFalsy();
      return made.structuredContent;
    };

    it('makes a single-use payment link by default: the exact request, a key derived from the invoice, a 30-day expiry', async () => {
      const before = Date.now();
      const { result, sent } = await sentDuring(double, () => clerk.call('create_invoice_payment', { invoice_id: 'PL-1', amount: '120.5' }));
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toMatchObject({
        invoice_id: 'PL-1',
        kind: 'payment_link',
        payment_id: null,
        status: 'open',
        amount: { value: '120.50', currency: 'EUR' },
        mode: 'test',
        reused: false,
        replaced: [],
      });
      const linkId = String(result.structuredContent.payment_link_id);
      expect(linkId).toMatch(/^pl_/);
      // The link's own URL, as Mollie gave it: never a host of ours.
      expect(result.structuredContent.checkout_url).toBe((await double.simulator.getPaymentLink(linkId)).url);
      expect(writes(sent)).toEqual(['POST /v2/payment-links']);
      const post = sent.find((request) => request.method === 'POST')!;
      expect(post.headers['idempotency-key']).toMatch(/^mim-link-[0-9a-f]{48}$/);
      const body = post.body as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['amount', 'description', 'expiresAt', 'redirectUrl']);
      expect(body).toMatchObject({ amount: { value: '120.50', currency: 'EUR' }, description: 'Invoice PL-1', redirectUrl: 'https://shop.example.com/thanks' });
      expect(body).not.toHaveProperty('reusable');
      expect(body).not.toHaveProperty('metadata');
      const expiry = Date.parse(String(body.expiresAt));
      expect(expiry).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 30 * DAY - 1000);
      expect(expiry).toBeLessThanOrEqual(Date.now() + 30 * DAY);
      expect(Date.parse(String(result.structuredContent.expires_at))).toBe(expiry);
      const [decision] = auditRows(world.workspace, String(result.structuredContent.audit_id));
      expect(decision!.idempotency_key).toBe(post.headers['idempotency-key']);
    });

    it('takes expires_at as a date (the end of that day, UTC) or a date-time with offset', async () => {
      const day = new Date(Date.now() + 45 * DAY).toISOString().slice(0, 10);
      const { sent } = await sentDuring(double, () => link('PL-DATE', '10.00', { expires_at: day }));
      expect((sent.find((request) => request.method === 'POST')!.body as { expiresAt: string }).expiresAt).toBe(`${day}T23:59:59Z`);
      const at = new Date(Date.now() + 10 * DAY);
      const local = `${at.toISOString().slice(0, 10)}T17:30:00+02:00`;
      const made = await sentDuring(double, () => link('PL-TIME', '10.00', { expires_at: local }));
      expect((made.sent.find((request) => request.method === 'POST')!.body as { expiresAt: string }).expiresAt).toBe(`${at.toISOString().slice(0, 10)}T15:30:00Z`);
      const status = await clerk.call('get_payment_status', { payment_link_id: String(made.result.payment_link_id) });
      expect(status.structuredContent.status_label).toMatch(/^Open until \d{1,2} [A-Z][a-z]{2} \d{4}, 15:30 UTC; not paid yet$/);
      const byDay = await clerk.call('get_payment_status', { invoice_id: 'PL-DATE' });
      expect(byDay.structuredContent.status_label).toMatch(/^Open until \d{1,2} [A-Z][a-z]{2} \d{4}; not paid yet$/);
    });

    it.each([
      ['in the past', { expires_at: '2020-01-01' }, 'expires_at', /less than an hour from now/],
      ['in less than an hour', { expires_at: new Date(Date.now() + 20 * 60_000).toISOString() }, 'expires_at', /less than an hour from now/],
      ['more than a year ahead', { expires_at: new Date(Date.now() + 400 * DAY).toISOString().slice(0, 10) }, 'expires_at', /more than 365 days ahead/],
      ['not a calendar date', { expires_at: '2027-02-30' }, 'expires_at', /a date such as "2027-01-31"/],
      ['a date-time without offset', { expires_at: '2027-01-31T17:00:00' }, 'expires_at', /with offset/],
      ['on a checkout', { kind: 'checkout', expires_at: '2027-01-31' }, 'expires_at', /for payment links only/],
      ['a locale on a link', { locale: 'nl_NL' }, 'locale', /for checkouts only/],
      ['an unknown kind', { kind: 'invoice' }, 'kind', /"payment_link".*or "checkout"/],
    ])('refuses expires_at or locale %s, naming the field, with nothing sent to Mollie', async (_name, extra, field, message) => {
      const { result, sent } = await sentDuring(double, () => clerk.call('create_invoice_payment', { invoice_id: `PL-BAD-${field}`, amount: '10.00', ...extra }));
      expect(errorOf(result)).toMatchObject({ code: 'invalid_input', field, retryable: false });
      expect(errorOf(result).message).toMatch(message);
      expect(sent).toEqual([]);
      expect(auditRows(world.workspace, String(result.structuredContent.audit_id)).map((row) => row.kind)).toEqual(['decision', 'outcome']);
    });

    it('reuses the payable link days later, after Mollie has forgotten the Idempotency-Key, asking Mollie for nothing new', async () => {
      const first = await link('PL-REUSE', '75.00');
      world.advanceMollie(3 * DAY);
      const { result, sent } = await sentDuring(double, () => clerk.call('create_invoice_payment', { invoice_id: 'PL-REUSE', amount: '75.00' }));
      expect(result.structuredContent).toMatchObject({ payment_link_id: first.payment_link_id, reused: true, status: 'open', replaced: [] });
      expect(writes(sent)).toEqual([]);
      // Mollie itself would have made a second link for that key by now: the reuse is this server's own doing.
      const [creation] = double.requests.filter((request) => request.method === 'POST' && (request.body as { description?: string }).description === 'Invoice PL-REUSE');
      const fresh = await double.simulator.createPaymentLink(creation!.body as never, { idempotencyKey: String(creation!.headers['idempotency-key']) });
      expect(fresh.id).not.toBe(first.payment_link_id);
    });

    it('replaces the link for the remainder: the old one is archived before the new one exists', async () => {
      const old = await link('PL-PART', '300.00');
      const { result, sent } = await sentDuring(double, () => clerk.call('create_invoice_payment', { invoice_id: 'PL-PART', amount: '300.00', amount_already_paid: '100.00' }));
      expect(result.structuredContent).toMatchObject({ amount: { value: '200.00', currency: 'EUR' }, reused: false, replaced: [old.payment_link_id] });
      expect(writes(sent)).toEqual([`PATCH /v2/payment-links/${String(old.payment_link_id)}`, 'POST /v2/payment-links']);
      expect(sent.find((request) => request.method === 'PATCH')!.body).toEqual({ archived: true });
      expect((await double.simulator.getPaymentLink(String(old.payment_link_id))).archived).toBe(true);
      expect(() => double.simulator.payThroughLink(String(old.payment_link_id), 'paid')).toThrow(/withdrawn/);
      const status = await clerk.call('get_payment_status', { invoice_id: 'PL-PART' });
      expect(status.structuredContent).toMatchObject({ payment_link_id: result.structuredContent.payment_link_id, status: 'open' });
      expect(status.structuredContent.payments).toEqual([
        expect.objectContaining({ kind: 'payment_link', payment_link_id: old.payment_link_id, status: 'canceled', amount: { value: '300.00', currency: 'EUR' } }),
        expect.objectContaining({ kind: 'payment_link', payment_link_id: result.structuredContent.payment_link_id, status: 'open', amount: { value: '200.00', currency: 'EUR' } }),
      ]);
      const oldStatus = await clerk.call('get_payment_status', { payment_link_id: String(old.payment_link_id) });
      expect(oldStatus.structuredContent).toMatchObject({ status: 'canceled', is_final: true, checkout_url: null });
      expect(oldStatus.structuredContent.status_label).toMatch(/^Withdrawn on .*: the pay link was archived and can no longer be paid/);
    });

    it('replaces a checkout with a link by canceling it first, and a link with a checkout by archiving it', async () => {
      const checkout = await link('PL-KIND', '50.00', { kind: 'checkout' });
      const asLink = await sentDuring(double, () => link('PL-KIND', '50.00'));
      expect(asLink.result).toMatchObject({ kind: 'payment_link', replaced: [checkout.payment_id] });
      expect(writes(asLink.sent)).toEqual([`DELETE /v2/payments/${String(checkout.payment_id)}`, 'POST /v2/payment-links']);
      expect((await double.simulator.getPayment(String(checkout.payment_id))).status).toBe('canceled');
    });

    it('cancels a payment a customer had just started through the old link, so the old amount can never be paid', async () => {
      const old = await link('PL-OPEN', '90.00');
      const started = double.simulator.payThroughLink(String(old.payment_link_id), 'open');
      const { result, sent } = await sentDuring(double, () => clerk.call('create_invoice_payment', { invoice_id: 'PL-OPEN', amount: '90.00', amount_already_paid: '30.00' }));
      expect(result.structuredContent).toMatchObject({ amount: { value: '60.00', currency: 'EUR' }, replaced: [old.payment_link_id] });
      expect(writes(sent)).toEqual([`PATCH /v2/payment-links/${String(old.payment_link_id)}`, `DELETE /v2/payments/${started.id}`, 'POST /v2/payment-links']);
      expect((await double.simulator.getPayment(started.id)).status).toBe('canceled');
    });

    it('refuses to replace a link while a payment through it is under way, and makes nothing', async () => {
      const old = await link('PL-BUSY', '40.00');
      const pending = double.simulator.payThroughLink(String(old.payment_link_id), 'pending');
      const { result, sent } = await sentDuring(double, () => clerk.call('create_invoice_payment', { invoice_id: 'PL-BUSY', amount: '40.00', amount_already_paid: '10.00' }));
      expect(errorOf(result)).toMatchObject({ code: 'conflict', retryable: true });
      expect(errorOf(result).message).toContain(`payment link ${String(old.payment_link_id)} (payment ${pending.id})`);
      expect(errorOf(result).message).toMatch(/under way \(pending\)/);
      expect(writes(sent)).toEqual([]);
      // The same amount again is the same link, still being paid: handed back, not doubled.
      const same = await clerk.call('create_invoice_payment', { invoice_id: 'PL-BUSY', amount: '40.00' });
      expect(same.structuredContent).toMatchObject({ payment_link_id: old.payment_link_id, reused: true, status: 'pending', payment_id: pending.id });
    });

    it('a customer pays through the link: status by link and by invoice, then a refund of the paying payment', async () => {
      const made = await link('PL-PAY', '250.00');
      const linkId = String(made.payment_link_id);
      double.simulator.payThroughLink(linkId, 'failed');
      world.advanceMollie(2 * DAY);
      const paid = double.simulator.payThroughLink(linkId, 'paid');
      const byLink = await clerk.call('get_payment_status', { payment_link_id: linkId });
      expect(byLink.structuredContent).toMatchObject({
        kind: 'payment_link',
        payment_link_id: linkId,
        payment_id: paid.id,
        invoice_id: 'PL-PAY',
        status: 'paid',
        is_final: true,
        amount: { value: '250.00', currency: 'EUR' },
        amount_refunded: { value: '0.00', currency: 'EUR' },
        amount_remaining: { value: '250.00', currency: 'EUR' },
        checkout_url: null,
        method: 'ideal',
        refunds: [],
      });
      expect(byLink.structuredContent.status_label).toMatch(/^Paid on \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC through its pay link$/);
      const refunded = await clerk.call('refund', { payment_id: paid.id, amount: '50.00' });
      expect(refunded.structuredContent).toMatchObject({ payment_id: paid.id, amount: { value: '50.00', currency: 'EUR' } });
      // The refund knows its invoice through the link's payment record.
      expect(auditRows(world.workspace, String(refunded.structuredContent.audit_id))[0]).toMatchObject({ invoice_id: 'PL-PAY' });
      const byInvoice = await clerk.call('get_payment_status', { invoice_id: 'PL-PAY' });
      expect(byInvoice.structuredContent).toMatchObject({ status: 'paid', payment_id: paid.id, amount_remaining: { value: '200.00', currency: 'EUR' } });
      expect(byInvoice.structuredContent.refunds).toEqual([expect.objectContaining({ refund_id: refunded.structuredContent.refund_id, amount: { value: '50.00', currency: 'EUR' } })]);
      // Mollie counts a pending refund in amountRefunded; the label must not call that money refunded yet.
      expect(byInvoice.structuredContent.status_label).toMatch(/through its pay link; a refund of 50\.00 EUR is pending$/);
      const byPayment = await clerk.call('get_payment_status', { payment_id: paid.id });
      expect(byPayment.structuredContent).toMatchObject({ kind: 'payment_link', payment_link_id: linkId, invoice_id: 'PL-PAY', status: 'paid' });
      // Paid: no new link for the same invoice, and nothing to withdraw.
      const again = await clerk.call('create_invoice_payment', { invoice_id: 'PL-PAY', amount: '250.00' });
      expect(errorOf(again)).toMatchObject({ code: 'conflict', field: 'amount_already_paid' });
      expect(errorOf(again).message).toContain(paid.id);
      const cancel = await sentDuring(double, () => clerk.call('cancel_invoice_payment', { invoice_id: 'PL-PAY' }));
      expect(errorOf(cancel.result)).toMatchObject({ code: 'conflict' });
      expect(errorOf(cancel.result).message).toMatch(/already paid.*Refund/);
      expect(writes(cancel.sent)).toEqual([]);
    });

    it('cancels by invoice, by link and by checkout; again is not an error', async () => {
      const byInvoice = await link('PL-CANCEL-1', '10.00');
      const { result, sent } = await sentDuring(double, () => clerk.call('cancel_invoice_payment', { invoice_id: 'PL-CANCEL-1' }));
      expect(result.structuredContent).toMatchObject({ invoice_id: 'PL-CANCEL-1', canceled: [{ kind: 'payment_link', payment_link_id: byInvoice.payment_link_id, payment_id: null, status: 'canceled' }] });
      expect(writes(sent)).toEqual([`PATCH /v2/payment-links/${String(byInvoice.payment_link_id)}`]);
      const twice = await sentDuring(double, () => clerk.call('cancel_invoice_payment', { invoice_id: 'PL-CANCEL-1' }));
      expect(twice.result.isError).toBeFalsy();
      expect(twice.result.structuredContent.canceled).toEqual([expect.objectContaining({ status: 'canceled' })]);
      expect(writes(twice.sent)).toEqual([]);

      const byLink = await link('PL-CANCEL-2', '10.00');
      const cancelLink = await clerk.call('cancel_invoice_payment', { payment_link_id: String(byLink.payment_link_id) });
      expect(cancelLink.structuredContent.canceled).toEqual([expect.objectContaining({ payment_link_id: byLink.payment_link_id, status: 'canceled' })]);

      const checkout = await link('PL-CANCEL-3', '10.00', { kind: 'checkout' });
      const cancelCheckout = await clerk.call('cancel_invoice_payment', { payment_id: String(checkout.payment_id) });
      expect(cancelCheckout.structuredContent.canceled).toEqual([{ kind: 'checkout', payment_link_id: null, payment_id: checkout.payment_id, status: 'canceled' }]);
      expect((await double.simulator.getPayment(String(checkout.payment_id))).status).toBe('canceled');
      const [decision] = auditRows(world.workspace, String(cancelCheckout.structuredContent.audit_id));
      expect(decision).toMatchObject({ tool: 'cancel_invoice_payment', decision: 'allowed', payment_id: checkout.payment_id });

      const foreign = await double.simulator.createPaymentLink({ amount: { value: '1.00', currency: 'EUR' }, description: 'not ours' }, { idempotencyKey: `foreign-${transport}` });
      const refused = await sentDuring(double, () => clerk.call('cancel_invoice_payment', { payment_link_id: foreign.id }));
      expect(errorOf(refused.result)).toMatchObject({ code: 'not_found', field: 'payment_link_id' });
      expect(refused.sent).toEqual([]);
    });

    it('lists links in the log by payment_link_id, with the link in each entry', async () => {
      const made = await link('PL-LOG', '12.00');
      const linkId = String(made.payment_link_id);
      await clerk.call('get_payment_status', { payment_link_id: linkId });
      await clerk.call('cancel_invoice_payment', { payment_link_id: linkId });
      const log = await clerk.call('list_logs', { payment_link_id: linkId });
      const entries = log.structuredContent.entries as { tool: string; payment_link_id: string | null; payment_id: string | null }[];
      expect(entries.map((entry) => entry.tool)).toEqual(['cancel_invoice_payment', 'get_payment_status', 'create_invoice_payment']);
      for (const entry of entries) expect(entry).toMatchObject({ payment_link_id: linkId, payment_id: null });
    });
  });
}
