/**
 * The simulator's checkout page in a real browser (Debian's headless Chromium, driven by playwright-core): the
 * "customer" sees the invoice, the amount and the agent's description as plain text, presses a button, and the
 * status the agent reads changes as it would after Mollie's webhook.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_LAUNCH } from '../setup/chromium.js';
import { newToken, spawnHttpServer, type HttpClientHandle, type HttpServerHandle } from '../support/http-server.js';
import { createWorkspace, type Workspace } from '../support/stdio-server.js';

const SHOP = newToken();
const POLICY = `agent: shop
token_sha256: ${SHOP.sha256}
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "500.00" }
  get_payment_status: {}
  list_logs: { scope: all }
`;

let workspace: Workspace;
let server: HttpServerHandle;
let shop: HttpClientHandle;
let browser: Browser;

beforeAll(async () => {
  workspace = createWorkspace({ shop: POLICY });
  server = await spawnHttpServer({ workspace });
  shop = await server.connect(SHOP.token);
  browser = await chromium.launch(CHROMIUM_LAUNCH);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await shop?.close();
  await server?.stop();
  workspace?.remove();
});

async function newPayment(invoiceId: string, amount: string, description: string): Promise<{ paymentId: string; checkoutUrl: string }> {
  const created = await shop.call('create_invoice_payment', { invoice_id: invoiceId, amount, currency: 'EUR', description, kind: 'checkout' });
  expect(created.isError).toBe(false);
  return { paymentId: String(created.structuredContent.payment_id), checkoutUrl: String(created.structuredContent.checkout_url) };
}

async function newLink(invoiceId: string, amount: string): Promise<{ linkId: string; checkoutUrl: string }> {
  const created = await shop.call('create_invoice_payment', { invoice_id: invoiceId, amount, currency: 'EUR' });
  expect(created.isError).toBe(false);
  return { linkId: String(created.structuredContent.payment_link_id), checkoutUrl: String(created.structuredContent.checkout_url) };
}

describe('the simulator checkout page', () => {
  it('shows the invoice, amount and description as text, and Pay makes the payment paid for the agent', async () => {
    const description = 'Invoice 2026-77 <script>window.pwned = true</script> & "friends"';
    const { paymentId, checkoutUrl } = await newPayment('2026-77', '42.50', description);
    expect(checkoutUrl).toBe(`${server.url}/checkout/${paymentId}`);

    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(checkoutUrl);
    expect(await page.textContent('[data-field=amount]')).toBe('42.50 EUR');
    expect(await page.textContent('[data-field=invoice]')).toBe('2026-77');
    expect(await page.textContent('[data-field=description]')).toBe(description);
    expect(await page.textContent('[data-field=status]')).toBe('open');
    expect(await page.evaluate(() => (window as { pwned?: boolean }).pwned)).toBeUndefined();
    const screenshots = join(tmpdir(), 'mollie-invoice-mcp-screenshots');
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'checkout-open.png') });

    await page.getByRole('button', { name: 'Pay' }).click();
    await page.waitForSelector('[data-field=result]');
    expect(await page.textContent('[data-field=status]')).toBe('paid');
    expect(await page.textContent('[data-field=result]')).toContain('This payment is paid.');
    expect(await page.getByRole('button').count()).toBe(0);
    await page.screenshot({ path: join(screenshots, 'checkout-paid.png') });
    expect(dialogs).toEqual([]);
    await page.close();

    const status = await shop.call('get_payment_status', { invoice_id: '2026-77' });
    expect(status.structuredContent).toMatchObject({ status: 'paid', payment_id: paymentId });
    const log = await shop.call('list_logs', { payment_id: paymentId });
    const entries = log.structuredContent.entries as { agent: string; outcome: string; summary: string }[];
    expect(entries.map((entry) => entry.agent)).toEqual(['shop', 'mollie-webhook', 'shop']);
    expect(entries[1]).toMatchObject({ agent: 'mollie-webhook', outcome: 'ok' });
    expect(entries[1]!.summary).toContain(`payment ${paymentId} of invoice 2026-77 (42.50 EUR) is now paid (was open)`);
  });

  for (const [button, status] of [['Fail', 'failed'], ['Cancel', 'canceled'], ['Let it expire', 'expired']] as const) {
    it(`${button} makes the payment ${status}, and the pay link can then not be paid`, async () => {
      const { checkoutUrl } = await newPayment(`2026-${status}`, '10.00', `Invoice ${status}`);
      const page = await browser.newPage();
      await page.goto(checkoutUrl);
      await page.getByRole('button', { name: button, exact: true }).click();
      await page.waitForSelector('[data-field=result]');
      expect(await page.textContent('[data-field=status]')).toBe(status);
      await page.close();
      const read = await shop.call('get_payment_status', { invoice_id: `2026-${status}` });
      expect(read.structuredContent.status).toBe(status);
      // A new pay link for the same invoice is a new payment: the ended one is not reused.
      const again = await shop.call('create_invoice_payment', { invoice_id: `2026-${status}`, amount: '10.00', currency: 'EUR', kind: 'checkout' });
      expect(again.structuredContent.reused).toBe(false);
    });
  }

  it('a payment link: a first attempt fails, the customer pays through it, the webhook is matched through Mollie, and the invoice reads paid', async () => {
    const { linkId, checkoutUrl } = await newLink('2026-114', '450.00');
    expect(checkoutUrl).toBe(`${server.url}/checkout/${linkId}`);
    const page = await browser.newPage();
    await page.goto(checkoutUrl);
    expect(await page.textContent('h1')).toBe('Test payment link');
    expect(await page.textContent('[data-field=amount]')).toBe('450.00 EUR');
    expect(await page.textContent('[data-field=invoice]')).toBe('2026-114');
    expect(await page.textContent('[data-field="payment link"]')).toBe(linkId);
    expect(await page.textContent('[data-field=status]')).toBe('open');
    await page.screenshot({ path: join(tmpdir(), 'mollie-invoice-mcp-screenshots', 'link-open.png') });

    // A first attempt fails; the link stays payable, as Mollie's does.
    await page.getByRole('button', { name: 'Fail', exact: true }).click();
    await page.waitForSelector('[data-field="last payment"]');
    expect(await page.textContent('[data-field=status]')).toBe('open');
    expect(await page.textContent('[data-field="last payment"]')).toMatch(/^tr_\w+ \(failed\)$/);
    await page.getByRole('button', { name: 'Pay' }).click();
    await page.waitForSelector('[data-field=result]');
    expect(await page.textContent('[data-field=status]')).toBe('paid');
    expect(await page.textContent('[data-field=result]')).toContain('already been paid');
    expect(await page.getByRole('button').count()).toBe(0);
    await page.close();

    const status = await shop.call('get_payment_status', { invoice_id: '2026-114' });
    expect(status.structuredContent).toMatchObject({ kind: 'payment_link', payment_link_id: linkId, status: 'paid', amount_remaining: { value: '450.00', currency: 'EUR' } });
    expect(String(status.structuredContent.status_label)).toMatch(/^Paid on .* through its pay link$/);
    const paymentId = String(status.structuredContent.payment_id);
    const log = await shop.call('list_logs', { payment_id: paymentId });
    const webhooks = (log.structuredContent.entries as { agent: string; outcome: string; summary: string; payment_link_id: string | null }[]).filter((entry) => entry.agent === 'mollie-webhook');
    expect(webhooks).toHaveLength(1);
    expect(webhooks[0]).toMatchObject({ outcome: 'ok', payment_link_id: linkId });
    expect(webhooks[0]!.summary).toContain(`payment ${paymentId} through payment link ${linkId} (now paid) of invoice 2026-114 (450.00 EUR) is paid`);
  });

  it('a payment link left to expire reads expired, and the next call makes a new one', async () => {
    const { linkId, checkoutUrl } = await newLink('2026-115', '20.00');
    const page = await browser.newPage();
    await page.goto(checkoutUrl);
    await page.getByRole('button', { name: 'Let it expire', exact: true }).click();
    await page.waitForSelector('[data-field=result]');
    expect(await page.textContent('[data-field=status]')).toBe('expired');
    await page.close();
    const read = await shop.call('get_payment_status', { payment_link_id: linkId });
    expect(read.structuredContent).toMatchObject({ status: 'expired', is_final: true, checkout_url: null });
    const again = await shop.call('create_invoice_payment', { invoice_id: '2026-115', amount: '20.00', currency: 'EUR' });
    expect(again.structuredContent).toMatchObject({ reused: false, replaced: [] });
    expect(again.structuredContent.payment_link_id).not.toBe(linkId);
  });

  it('an unknown payment shows a plain not-found page', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${server.url}/checkout/tr_unknownPayment1`);
    expect(response?.status()).toBe(404);
    expect(await page.textContent('h1')).toBe('No such payment');
    await page.close();
  });
});
