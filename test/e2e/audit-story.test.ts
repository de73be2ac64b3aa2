/**
 * `audit story` and `audit list --payment/--invoice` through the built CLI, on the log a real server wrote over stdio
 * on the simulator: a pay link made, paid with `simulate pay` (recorded as Mollie's webhook), read and refunded, next
 * to another invoice.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY } from '../support/engine-world.js';
import { CLI, createWorkspace, spawnServer, workspaceEnv, type Workspace } from '../support/stdio-server.js';

const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let workspace: Workspace;

async function cli(args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: workspaceEnv(workspace), timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const ids = { link: '', payment: '', refund: '', otherLink: '' };

beforeAll(async () => {
  workspace = createWorkspace({ clerk: POLICY('clerk') });
  const server = await spawnServer({ agent: 'clerk', workspace });
  try {
    ids.otherLink = String((await server.call('create_invoice_payment', { invoice_id: 'INV-2', amount: '40.00' })).structuredContent.payment_link_id);
    ids.link = String((await server.call('create_invoice_payment', { invoice_id: 'INV-1', amount: '100.00' })).structuredContent.payment_link_id);
    const paid = await cli(['simulate', 'pay', ids.link]);
    expect(paid.code, paid.stderr).toBe(0);
    ids.payment = String((await server.call('get_payment_status', { payment_link_id: ids.link })).structuredContent.payment_id);
    ids.refund = String((await server.call('refund', { payment_id: ids.payment, amount: '20.00' })).structuredContent.refund_id);
    expect((await server.call('refund', { payment_id: ids.payment, amount: '2000.00' })).isError).toBe(true);
    await server.call('get_payment_status', { invoice_id: 'INV-2' });
  } finally {
    await server.close();
  }
}, 60_000);
afterAll(() => workspace?.remove());

describe('audit story', () => {
  it('tells every call, the webhook and the refunds of a payment, in order, with rule and policy hash', async () => {
    const run = await cli(['audit', 'story', ids.payment]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`Database: ${workspace.db}`);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`Story of payment ${ids.payment} (invoice INV-1; payment link ${ids.link})`);
    expect(lines[1]).toMatch(/^4 calls, 1 webhook, 0 approval steps, from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to .* UTC\.$/);
    expect(lines[2]).toBe('Approved by: nobody.');
    const heads = lines.filter((line) => /^\d+\. \(row \d+\)/.test(line)).map((line) => line.replace(/^\d+\. \(row \d+\) {2}\S+ \S+ UTC {2}/, '').replace(/ {2}\[.*\]$/, ''));
    expect(heads).toEqual(['clerk  call create_invoice_payment', 'mollie-webhook  webhook', 'clerk  call get_payment_status', 'clerk  call refund', 'clerk  call refund']);
    expect(run.stdout).toContain(`The simulate command reported a change to payment ${ids.payment}: payment ${ids.payment} through payment link ${ids.link}`);
    expect(run.stdout).toMatch(/^ {2}rule: {6}.*clerk\.yaml: tools\.refund\.limits\.EUR\.per_call = 1000\.00$/m);
    expect(run.stdout).toMatch(/^ {2}policy: {4}[0-9a-f]{12}$/m);
    expect(run.stdout).toMatch(/^ {2}decision: {2}denied \(per_call_exceeded\)$/m);
    expect(run.stdout).toContain(`refund ${ids.refund}`);
    expect(run.stdout).not.toContain('INV-2');
    expect(run.stdout).not.toContain(ids.otherLink);
  });

  it('tells the same entries for the payment link and the invoice', async () => {
    const entries = (stdout: string) => stdout.split('\n').slice(1).join('\n');
    const byPayment = await cli(['audit', 'story', ids.payment]);
    const byLink = await cli(['audit', 'story', ids.link]);
    const byInvoice = await cli(['audit', 'story', 'INV-1']);
    expect(byLink.stdout.split('\n')[0]).toBe(`Story of payment link ${ids.link} (invoice INV-1; payment ${ids.payment})`);
    expect(byInvoice.stdout.split('\n')[0]).toBe(`Story of invoice INV-1 (payment link ${ids.link}; payment ${ids.payment})`);
    expect(entries(byLink.stdout)).toBe(entries(byPayment.stdout));
    expect(entries(byInvoice.stdout)).toBe(entries(byPayment.stdout));
  });

  it('exits 1 for an id nothing mentions, and 2 for no id, two ids or one that is not an id', async () => {
    const unknown = await cli(['audit', 'story', 'tr_doesNotExist1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('Nothing in this database mentions "tr_doesNotExist1": no audit row, payment or payment link.');
    const bad = await cli(['audit', 'story', 'INV 1; rm']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('audit story needs a payment id (tr_...), a payment link id (pl_...) or an invoice id (1-64 letters, digits, ".", "_", "/" or "-"); got "INV 1; rm".');
    const none = await cli(['audit', 'story']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('audit story needs a payment id (tr_...)');
    const two = await cli(['audit', 'story', ids.payment, 'INV-1']);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('audit story takes one id');
  });

  it('has its own --help', async () => {
    const help = await cli(['audit', 'story', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: mollie-invoice-mcp audit story <tr_\.\.\.\|pl_\.\.\.\|invoice_id> \[--db FILE \| --database-url URL\]/);
    expect((await cli(['--help'])).stdout).toContain('audit list|export|verify|story');
  });
});

describe('audit list --payment and --invoice', () => {
  it('lists only the calls about that payment, link or invoice', async () => {
    const byPayment = await cli(['audit', 'list', '--payment', ids.payment]);
    expect(byPayment.code, byPayment.stderr).toBe(0);
    const paymentRows = byPayment.stdout.trimEnd().split('\n').slice(2);
    // The webhook named it in its decision, the status read in its outcome, the refunds in both.
    expect(paymentRows.map((line) => line.split(/ {2,}/)[2])).toEqual(['-', 'get_payment_status', 'refund', 'refund']);
    const byLink = await cli(['audit', 'list', '--payment', ids.link]);
    expect(byLink.stdout).toMatch(/clerk\s+create_invoice_payment\s+allowed\s+ok\s+100\.00 EUR/);
    expect(byLink.stdout).not.toContain('40.00 EUR');
    const byInvoice = await cli(['audit', 'list', '--invoice', 'INV-2']);
    const invoiceRows = byInvoice.stdout.trimEnd().split('\n').slice(2);
    expect(invoiceRows).toHaveLength(2);
    expect(byInvoice.stdout).toContain(ids.otherLink);
    expect(byInvoice.stdout).not.toContain(ids.link);
    const nothing = await cli(['audit', 'list', '--invoice', 'INV-404']);
    expect(nothing.stdout.trim()).toBe('No calls recorded that match.');
  });

  it('refuses an id that is not one, naming what is allowed', async () => {
    const refund = await cli(['audit', 'list', '--payment', 're_notAPayment1']);
    expect(refund.code).toBe(2);
    expect(refund.stderr).toContain('--payment must be a payment id (tr_ followed by letters and digits) or a payment link id (pl_...); got "re_notAPayment1".');
    const invoice = await cli(['audit', 'list', '--invoice', 'INV 1']);
    expect(invoice.code).toBe(2);
    expect(invoice.stderr).toContain('--invoice must be an invoice id: 1-64 letters, digits, ".", "_", "/" or "-"; got "INV 1".');
    const help = await cli(['audit', 'list', '--help']);
    expect(help.stdout).toContain('[--payment ID] [--invoice ID]');
  });
});
