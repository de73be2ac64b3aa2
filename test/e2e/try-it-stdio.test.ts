/**
 * The path most people take first, as the README's "Try it in your client" walks it: two client entries (two agents)
 * start `serve --simulator` over stdio on one database file, the customer pays the link in a browser on the stdio
 * server's own checkout page, the other agent refunds it, and a restart keeps every bit of it.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_LAUNCH } from '../setup/chromium.js';
import { createWorkspace, EXAMPLE_POLICIES, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';

let workspace: Workspace;
let browser: Browser;
const open: ServerHandle[] = [];

beforeAll(async () => {
  // The example policies, as shipped: billing-bot sends pay links, refund-desk refunds.
  workspace = createWorkspace({
    'billing-bot': readFileSync(join(EXAMPLE_POLICIES, 'billing-bot.yaml'), 'utf8'),
    'refund-desk': readFileSync(join(EXAMPLE_POLICIES, 'refund-desk.yaml'), 'utf8'),
  });
  browser = await chromium.launch(CHROMIUM_LAUNCH);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of open) await server.close().catch(() => undefined);
  workspace?.remove();
});

async function start(agent: string, env: Record<string, string> = {}): Promise<ServerHandle> {
  const server = await spawnServer({ agent, workspace, env });
  open.push(server);
  return server;
}

/** A GET with the request target exactly as given (fetch would normalise it), and the status line of the answer. */
function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('end', () => resolve(answer.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

const structured = (result: { structuredContent: Record<string, unknown> }) => result.structuredContent;

describe('two agents in a client, one simulator file, over stdio', () => {
  it('one agent makes a link, the customer pays it in the browser, the other refunds it, and a restart keeps all of it', async () => {
    const billing = await start('billing-bot');
    const refunds = await start('refund-desk');

    const created = structured(await billing.call('create_invoice_payment', { invoice_id: 'INV-1001', amount: '100.00', currency: 'EUR', description: 'Invoice INV-1001' }));
    const linkId = String(created.payment_link_id);
    const checkoutUrl = String(created.checkout_url);
    // A page on this machine that a browser can open, not a placeholder host; its address is in the start-up log.
    expect(checkoutUrl).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/checkout/${linkId}$`));
    expect(billing.stderr()).toContain(checkoutUrl.replace(linkId, '<tr_...|pl_...>'));

    // The other process sees the link its neighbour made: one simulated Mollie.
    const seen = structured(await refunds.call('get_payment_status', { payment_link_id: linkId }));
    expect(seen).toMatchObject({ payment_link_id: linkId, status: 'open', invoice_id: 'INV-1001' });

    const page = await browser.newPage();
    try {
      await page.goto(checkoutUrl);
      expect(await page.textContent('[data-field="amount"]')).toBe('100.00 EUR');
      expect(await page.textContent('[data-field="invoice"]')).toBe('INV-1001');
      const shot = await page.screenshot({ fullPage: true });
      expect(shot.length).toBeGreaterThan(5_000);
      if (process.env.UPDATE_DOCS === '1') {
        const images = new URL('../../docs/images/', import.meta.url).pathname;
        mkdirSync(images, { recursive: true });
        await page.screenshot({ path: join(images, 'checkout-page.png'), fullPage: true });
      }
      await page.click('button[value=paid]');
      await page.waitForURL(checkoutUrl);
      expect(await page.textContent('[data-field="status"]')).toBe('paid');
    } finally {
      await page.close();
    }

    const paid = structured(await refunds.call('get_payment_status', { payment_link_id: linkId }));
    expect(paid).toMatchObject({ status: 'paid', payment_id: expect.stringMatching(/^tr_/) });
    const paymentId = String(paid.payment_id);

    const refund = await refunds.call('refund', { payment_id: paymentId, amount: '5.00', description: 'Customer asked' });
    expect(refund.isError).toBe(false);
    expect(structured(refund)).toMatchObject({ status: 'pending', amount: { value: '5.00', currency: 'EUR' } });

    // The billing agent's process, which made none of it, reads the same refund.
    const afterRefund = structured(await billing.call('get_payment_status', { payment_id: paymentId }));
    expect(afterRefund).toMatchObject({ amount_refunded: { value: '5.00' }, amount_remaining: { value: '95.00' } });
    expect(afterRefund.status_label).toMatch(/; a refund of 5\.00 EUR is pending$/);

    await billing.close();
    await refunds.close();

    // A restart: a new process on the same file finds the payment, the link and the refund, which Mollie-like has
    // settled from pending to refunded meanwhile.
    const again = await start('refund-desk');
    let status: Record<string, unknown> = {};
    const deadline = Date.now() + 30_000;
    for (;;) {
      status = structured(await again.call('get_payment_status', { payment_id: paymentId }));
      const refundsNow = status.refunds as { status: string }[];
      if (refundsNow[0]?.status === 'refunded' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(status).toMatchObject({ status: 'paid', payment_link_id: linkId, invoice_id: 'INV-1001', amount_refunded: { value: '5.00' }, amount_remaining: { value: '95.00' } });
    expect(status.status_label).toMatch(/; 5\.00 EUR refunded$/);
    expect(status.refunds).toEqual([expect.objectContaining({ status: 'refunded', amount: { value: '5.00', currency: 'EUR' } })]);
    const link = structured(await again.call('get_payment_status', { payment_link_id: linkId }));
    expect(link).toMatchObject({ status: 'paid', payment_id: paymentId });
  }, 90_000);

  it('serves the checkout page on MOLLIE_MCP_CHECKOUT_PORT, and on a free port when that one is taken', async () => {
    const first = await start('billing-bot', { MOLLIE_MCP_CHECKOUT_PORT: '0' });
    // The page starts just after the protocol does; a tool call waits for it, so after one its address is logged.
    await first.call('list_logs', {});
    const port = Number(/127\.0\.0\.1:(\d+)\/checkout\//.exec(first.stderr())![1]);
    const second = await start('billing-bot', { MOLLIE_MCP_CHECKOUT_PORT: String(port) });
    const link = structured(await second.call('create_invoice_payment', { invoice_id: 'INV-1002', amount: '10.00', currency: 'EUR' }));
    const url = new URL(String(link.checkout_url));
    expect(Number(url.port)).not.toBe(port);
    expect(second.stderr()).toContain('checkout port is taken');
    // Each page serves every payment in the file, whichever process made it.
    const fromFirst = await fetch(`http://127.0.0.1:${port}${url.pathname}`);
    expect(fromFirst.status).toBe(200);
    expect(await fromFirst.text()).toContain('INV-1002');
    // And only that page: the MCP protocol is not on this port, nor anything else.
    expect((await fetch(`http://127.0.0.1:${port}/mcp`)).status).toBe(404);
    // A page on another site cannot pay through it.
    const forged = await fetch(`http://127.0.0.1:${port}${url.pathname}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example' },
      body: 'outcome=paid',
    });
    expect(forged.status).toBe(403);
    // Request targets a web page or a local process can send that no URL parser takes: answered, and the MCP server
    // beside the page keeps running.
    for (const target of ['//%5B', 'http://[', '/checkout/%E0%A4%A', `/checkout/${'x'.repeat(70_000)}`]) {
      const answer = await rawGet(port, target);
      expect(answer).toMatch(/^HTTP\/1\.1 (400|404|431) /);
    }
    expect(structured(await first.call('get_payment_status', { payment_link_id: String(link.payment_link_id) }))).toMatchObject({ status: 'open' });
    expect((await fetch(`http://127.0.0.1:${port}${url.pathname}`)).status).toBe(200);
    expect(existsSync(workspace.db) && statSync(workspace.db).size > 0).toBe(true);
  }, 60_000);
});
