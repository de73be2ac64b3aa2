/**
 * tools/list per demo agent, as committed snapshots (test/e2e/__toolsnaps__/<agent>.json): any change to a tool's
 * schema, annotations or description, or to what an agent sees, shows up as a diff to review. Update deliberately
 * with `npx vitest run test/e2e/toolsnaps.test.ts -u` and note the change in CHANGELOG.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, EXAMPLE_POLICIES, spawnServer, type Workspace } from '../support/stdio-server.js';

let workspace: Workspace;
beforeAll(() => {
  workspace = createWorkspace();
});
afterAll(() => workspace.remove());

describe('tools/list snapshots', () => {
  it.each(['billing-bot', 'refund-desk', 'auditor'])('%s', async (agent) => {
    const server = await spawnServer({ agent, workspace: { ...workspace, policies: EXAMPLE_POLICIES } });
    try {
      const { tools } = await server.client.listTools();
      await expect(`${JSON.stringify(tools, null, 2)}\n`).toMatchFileSnapshot(`__toolsnaps__/${agent}.json`);
    } finally {
      await server.close();
    }
  });

  it('declares honest annotations: refund and cancel_invoice_payment are destructive, only reads are read-only', async () => {
    const server = await spawnServer({ agent: 'billing-bot', workspace: { ...workspace, policies: EXAMPLE_POLICIES } });
    const refundDesk = await spawnServer({ agent: 'refund-desk', workspace: { ...workspace, policies: EXAMPLE_POLICIES } });
    try {
      const tools = [...(await server.client.listTools()).tools, ...(await refundDesk.client.listTools()).tools];
      const byName = new Map(tools.map((tool) => [tool.name, tool.annotations]));
      expect(byName.get('create_invoice_payment')).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true });
      expect(byName.get('get_payment_status')).toMatchObject({ readOnlyHint: true, openWorldHint: true });
      expect(byName.get('refund')).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true });
      expect(byName.get('list_logs')).toMatchObject({ readOnlyHint: true, openWorldHint: false });
      expect(byName.get('cancel_invoice_payment')).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true });
      for (const tool of tools) expect(tool.outputSchema?.type).toBe('object');
    } finally {
      await server.close();
      await refundDesk.close();
    }
  });
});
