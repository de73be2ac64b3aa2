/**
 * The simulator forgets its payments when the server stops, but the database keeps their records. A restarted server
 * must still issue a pay link for such an invoice instead of failing on a payment nobody knows any more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, EXAMPLE_POLICIES, spawnServer, type Workspace } from '../support/stdio-server.js';

let workspace: Workspace;
beforeAll(() => {
  workspace = createWorkspace();
});
afterAll(() => workspace.remove());

describe('a restarted simulator server', () => {
  it('treats a pay link the simulator no longer knows as ended, creates a new one, and reports the invoice by it', async () => {
    const options = { agent: 'billing-bot', workspace: { ...workspace, policies: EXAMPLE_POLICIES } };
    const first = await spawnServer(options);
    const before = await first.call('create_invoice_payment', { invoice_id: 'R-1', amount: '50.00' });
    await first.close();

    const second = await spawnServer(options);
    try {
      const after = await second.call('create_invoice_payment', { invoice_id: 'R-1', amount: '50.00' });
      expect(after.isError).toBeFalsy();
      expect(after.structuredContent).toMatchObject({ status: 'open', reused: false });
      expect(after.structuredContent.payment_link_id).not.toBe(before.structuredContent.payment_link_id);
      const status = await second.call('get_payment_status', { invoice_id: 'R-1' });
      expect(status.structuredContent).toMatchObject({ payment_link_id: after.structuredContent.payment_link_id, status: 'open' });
    } finally {
      await second.close();
    }
  });
});
