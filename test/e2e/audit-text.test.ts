/**
 * Text a client sends is stored as SQLite stores it (UTF-8): a client name with a lone surrogate must not make an
 * untouched log look tampered with. And text meant for a terminal (escape sequences, line breaks, bidi overrides) is
 * shown escaped wherever people read the log.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { rawRequest, spawnHttpServer } from '../support/http-server.js';
import { CLI, createWorkspace, spawnServer } from '../support/stdio-server.js';
import { openStoreForTest, storeArgs } from '../support/store-under-test.js';

const workspace = createWorkspace({ reader: 'agent: reader\ntools:\n  list_logs: { scope: own }\n' });
afterAll(() => workspace.remove());

describe('text that is not well-formed UTF-16', () => {
  it('leaves a log that verifies, with U+FFFD where the lone surrogate was', async () => {
    const server = await spawnServer({ agent: 'reader', workspace, clientName: 'broken \ud800 client' });
    try {
      const read = await server.call('list_logs', {});
      expect(read.isError).toBe(false);
      const again = await server.call('list_logs', {});
      const entries = again.structuredContent.entries as { audit_id: string }[];
      expect(entries.map((entry) => entry.audit_id)).toContain(read.structuredContent.audit_id);
    } finally {
      await server.close();
    }
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', ...storeArgs(workspace)], { encoding: 'utf8' })).toMatch(/Audit log intact: 4 rows/);
    const exported = execFileSync(process.execPath, [CLI, 'audit', 'export', '--format', 'jsonl', ...storeArgs(workspace)], { encoding: 'utf8' });
    expect(exported).toContain('broken \ufffd client');
  });
});

describe('text meant to fool whoever reads the log', () => {
  // ESC sequences that erase the line and move up, a carriage return, a newline that starts a forged row, a C1
  // control and a right-to-left override.
  const hostile = 'x\u001b[2K\u001b[1A\r\n2026-12-01 09:00:00  billing-bot  refund  allowed  ok  9999.00 EUR\u009b\u202etxen';
  const ESCAPED = /\\u001b\[2K\\u001b\[1A\\u000d\\u000a2026-12-01/;

  it('is escaped in audit list and list_logs summaries, and a made-up tool name is never stored as a tool', async () => {
    const web = createWorkspace({ auditor: `agent: auditor\ntools:\n  list_logs: { scope: all }\n` });
    const server = await spawnServer({ agent: 'auditor', workspace: web, clientName: `client ${hostile}` });
    const http = await spawnHttpServer({ workspace: web, env: { MOLLIE_MCP_WEBHOOK_URL: 'https://hooks.example.com/webhooks/mollie' } });
    try {
      const refused = await server.call(`list_logs${hostile}`, {});
      expect(refused.isError).toBe(true);
      const message = (refused.structuredContent.error as { message: string }).message;
      expect(message).not.toMatch(/[\u0000-\u001f\u0080-\u009f\u202e]/);
      expect(message).toMatch(ESCAPED);
      const hook = await rawRequest(`${http.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${encodeURIComponent(hostile)}` });
      expect(hook.status).toBe(200);

      const listed = await server.call('list_logs', { limit: 10 });
      const summaries = (listed.structuredContent.entries as { summary: string; tool: string | null }[]);
      for (const entry of summaries) expect(entry.summary).not.toMatch(/[\u0000-\u001f\u0080-\u009f\u202e]/);
      expect(summaries.some((entry) => ESCAPED.test(entry.summary) && entry.tool === null)).toBe(true);
      expect(summaries.some((entry) => entry.summary.includes('webhook') && ESCAPED.test(entry.summary))).toBe(true);

      const table = execFileSync(process.execPath, [CLI, 'audit', 'list', '--db', web.db, '--limit', '50'], { encoding: 'utf8' });
      expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u0080-\u009f\u202e]/);
      const lines = table.trimEnd().split('\n');
      // Every line after the header and its rule is one call, starting with its own time.
      for (const line of lines.slice(2)) expect(line).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}  /);
      expect(lines.length - 2).toBe(3);
      const db = openStoreForTest(web);
      const tools = db.prepare("SELECT DISTINCT tool FROM audit_log WHERE kind = 'decision'").all() as { tool: string | null }[];
      db.close();
      expect(new Set(tools.map((row) => row.tool))).toEqual(new Set([null, 'list_logs']));
    } finally {
      await server.close();
      await http.stop();
      web.remove();
    }
  });
});
