/**
 * Policy edits while the server runs: they apply without a restart; a broken edit keeps the last good policy in
 * force, is logged and is an audit row; removing an agent's file denies it on its very next call.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest } from '../support/store-under-test.js';

const READ_ONLY = `agent: editor
tools:
  get_payment_status: {}
`;
const WITH_PAY_LINKS = (perCall: string) => `agent: editor
tools:
  get_payment_status: {}
  create_invoice_payment:
    limits:
      EUR: { per_call: "${perCall}" }
`;

let workspace: Workspace;
let editor: ServerHandle;

beforeAll(async () => {
  workspace = createWorkspace({ editor: READ_ONLY });
  editor = await spawnServer({ agent: 'editor', workspace });
});

afterAll(async () => {
  await editor.close();
  workspace.remove();
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
const reason = (result: { structuredContent: Record<string, unknown> }) => (result.structuredContent.error as { reason?: string } | undefined)?.reason;

function serverEvents(): { reason: string; reason_message: string }[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare("SELECT reason, reason_message FROM audit_log WHERE agent = 'server' AND kind = 'event' ORDER BY seq").all() as { reason: string; reason_message: string }[];
  } finally {
    db.close();
  }
}

describe('editing policies/ while serving', () => {
  it('a new tool and a changed cap apply without a restart', async () => {
    expect(reason(await editor.call('create_invoice_payment', { invoice_id: 'LIVE-1', amount: '10.00' }))).toBe('tool_not_allowed');
    workspace.writePolicy('editor', WITH_PAY_LINKS('50.00'));
    await settle();
    expect((await editor.client.listTools()).tools.map((tool) => tool.name)).toEqual(['create_invoice_payment', 'get_payment_status']);
    expect((await editor.call('create_invoice_payment', { invoice_id: 'LIVE-1', amount: '40.00' })).isError).toBe(false);

    workspace.writePolicy('editor', WITH_PAY_LINKS('20.00'));
    await settle();
    expect(reason(await editor.call('create_invoice_payment', { invoice_id: 'LIVE-2', amount: '40.00' }))).toBe('per_call_exceeded');
    expect(serverEvents().filter((event) => event.reason === 'policy_reloaded').map((event) => event.reason_message)).toEqual([
      'Policies reloaded: changed editor.',
      'Policies reloaded: changed editor.',
    ]);
  });

  it('a broken edit keeps the last good policy, is logged and is audited', async () => {
    workspace.writePolicy('editor', `${WITH_PAY_LINKS('20.00')}  refund: { limits: { EUR: { per_call: 5 } } }\n`);
    await settle();
    // Still the last good policy: 15.00 under its 20.00 cap.
    expect((await editor.call('create_invoice_payment', { invoice_id: 'LIVE-3', amount: '15.00' })).isError).toBe(false);
    expect(editor.stderr()).toContain('A policy edit is broken: that file keeps its last good policy until it is fixed; other files apply');
    const failed = serverEvents().filter((event) => event.reason === 'policy_reload_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.reason_message).toMatch(/editor\.yaml:7: per_call for EUR: .*Quote it in YAML/);

    workspace.writePolicy('editor', WITH_PAY_LINKS('20.00'));
    await settle();
    expect(serverEvents().at(-1)!.reason).toBe('policy_reloaded');
  });

  it("removing an agent's file denies it on its next call", async () => {
    rmSync(join(workspace.policies, 'editor.yaml'));
    const denied = await editor.call('get_payment_status', { payment_id: 'tr_abcdefghij' });
    expect(reason(denied)).toBe('unknown_agent');
    expect(serverEvents().at(-1)!.reason_message).toBe('Policies reloaded: removed editor (denied from now on).');
  });

  it("a typo in one agent's file never holds back another agent's removal or narrowing", async () => {
    const other = createWorkspace({ leaving: WITH_PAY_LINKS('50.00').replace('editor', 'leaving'), narrowed: WITH_PAY_LINKS('50.00').replace('editor', 'narrowed'), typo: READ_ONLY.replace('editor', 'typo') });
    const leaving = await spawnServer({ agent: 'leaving', workspace: other });
    const narrowed = await spawnServer({ agent: 'narrowed', workspace: other });
    try {
      expect((await leaving.call('get_payment_status', { payment_id: 'tr_abcdefghij' })).structuredContent.error).toMatchObject({ code: 'not_found' });
      other.writePolicy('typo', 'agent: typo\ntools:\n  get_payment_status: {}\n  refnd: {}\n');
      rmSync(join(other.policies, 'leaving.yaml'));
      other.writePolicy('narrowed', WITH_PAY_LINKS('5.00').replace('editor', 'narrowed'));
      await settle();
      expect(reason(await leaving.call('get_payment_status', { payment_id: 'tr_abcdefghij' }))).toBe('unknown_agent');
      expect(reason(await narrowed.call('create_invoice_payment', { invoice_id: 'N-1', amount: '10.00' }))).toBe('per_call_exceeded');
    } finally {
      await leaving.close();
      await narrowed.close();
      other.remove();
    }
  });
});
