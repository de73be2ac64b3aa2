/**
 * The WAL is checkpointed less often than SQLite's default (every 4000 pages, so fewer calls wait for a copy), but it
 * must still be copied back while the server runs, or it grows by every page every call writes.
 */
import { statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkspace, spawnServer } from '../support/stdio-server.js';

const workspace = createWorkspace({
  clerk: `agent: clerk
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100.00", per_day: "1000.00" }
  get_payment_status: {}
`,
});
afterAll(() => workspace.remove());

describe('the WAL while serving', () => {
  it('is copied back into the database while calls keep coming, and stays under 16 MiB and a bit', async () => {
    const server = await spawnServer({ agent: 'clerk', workspace });
    try {
      const created = await server.call('create_invoice_payment', { invoice_id: 'INV-CP', amount: '10.00' });
      const linkId = String(created.structuredContent.payment_link_id);
      for (let i = 0; i < 600; i++) expect((await server.call('get_payment_status', { payment_link_id: linkId })).isError).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 600));
      // 600 calls write about 10,000 WAL pages (40 MiB) in all; checkpointed every 4000 pages, the file is reused from its start.
      const wal = statSync(`${workspace.db}-wal`).size;
      expect(wal).toBeLessThan(20 * 2 ** 20);
      expect(statSync(workspace.db).size).toBeGreaterThan(100 * 1024);
    } finally {
      await server.close();
    }
  });
});
