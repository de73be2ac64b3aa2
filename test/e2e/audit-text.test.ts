/**
 * Text a client sends is stored as SQLite stores it (UTF-8): a client name with a lone surrogate must not make an
 * untouched log look tampered with.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, createWorkspace, spawnServer } from '../support/stdio-server.js';

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
    expect(execFileSync(process.execPath, [CLI, 'audit', 'verify', '--db', workspace.db], { encoding: 'utf8' })).toMatch(/Audit log intact: 4 rows/);
    const exported = execFileSync(process.execPath, [CLI, 'audit', 'export', '--format', 'jsonl', '--db', workspace.db], { encoding: 'utf8' });
    expect(exported).toContain('broken \ufffd client');
  });
});
