/**
 * A restarted simulator server: the simulator keeps its state in the database file (since 0.5.1), so the invoice's
 * pay link is still the payable one, and its checkout_url points at the page of the process serving now. And if the
 * simulator's state is gone while the records remain (a file from before 0.5.1, its tables cleared), the server
 * still issues a pay link instead of failing on a link nobody knows any more.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, EXAMPLE_POLICIES, spawnServer, type Workspace } from '../support/stdio-server.js';

let workspace: Workspace;
beforeAll(() => {
  workspace = createWorkspace();
});
afterAll(() => workspace.remove());

const options = () => ({ agent: 'billing-bot', workspace: { ...workspace, policies: EXAMPLE_POLICIES } });

describe('a restarted simulator server', () => {
  it('reuses the pay link the simulator kept, with the checkout URL of the page serving now', async () => {
    const first = await spawnServer(options());
    const before = (await first.call('create_invoice_payment', { invoice_id: 'R-1', amount: '50.00' })).structuredContent;
    const firstPage = new URL(String(before.checkout_url)).port;
    await first.close();

    // The first process's port may be taken by now; the second picks its own.
    const second = await spawnServer(options());
    try {
      const after = (await second.call('create_invoice_payment', { invoice_id: 'R-1', amount: '50.00' })).structuredContent;
      expect(after).toMatchObject({ status: 'open', reused: true, payment_link_id: before.payment_link_id });
      const url = String(after.checkout_url);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('R-1');
      const status = (await second.call('get_payment_status', { invoice_id: 'R-1' })).structuredContent;
      expect(status).toMatchObject({ payment_link_id: before.payment_link_id, status: 'open', checkout_url: url });
      expect(firstPage).toMatch(/^\d+$/);
    } finally {
      await second.close();
    }
  });

  it('treats a pay link the simulator no longer knows as ended, creates a new one, and reports the invoice by it', async () => {
    const first = await spawnServer(options());
    const before = await first.call('create_invoice_payment', { invoice_id: 'R-2', amount: '50.00' });
    await first.close();
    const db = new Database(workspace.db);
    db.exec('DELETE FROM simulator_links; DELETE FROM simulator_payments; DELETE FROM simulator_replies;');
    db.close();

    const second = await spawnServer(options());
    try {
      const after = await second.call('create_invoice_payment', { invoice_id: 'R-2', amount: '50.00' });
      expect(after.isError).toBeFalsy();
      expect(after.structuredContent).toMatchObject({ status: 'open', reused: false });
      expect(after.structuredContent.payment_link_id).not.toBe(before.structuredContent.payment_link_id);
      const status = await second.call('get_payment_status', { invoice_id: 'R-2' });
      expect(status.structuredContent).toMatchObject({ payment_link_id: after.structuredContent.payment_link_id, status: 'open' });
    } finally {
      await second.close();
    }
  });
});
