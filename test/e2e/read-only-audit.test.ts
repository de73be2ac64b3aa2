/**
 * An auditor reads the log without being able to write it: the README's setup has the database (and its folder)
 * writable only by the server's user. audit verify, list, export and story open it read-only and change nothing.
 */
import { execFile } from 'node:child_process';
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, createWorkspace, spawnServer } from '../support/stdio-server.js';

const exec = promisify(execFile);
const workspace = createWorkspace({ reader: 'agent: reader\ntools:\n  list_logs: { scope: own }\n' });
afterAll(() => {
  chmodSync(workspace.dir, 0o755);
  workspace.remove();
});

/**
 * With the folder and file read-only. Root may write anything: as root, the command runs with every capability
 * dropped (setpriv), so the permissions hold for it as for anyone, and it can still read the checkout wherever CI
 * cloned it (another user such as nobody could not enter a clone in a private temporary folder).
 */
async function asAuditor(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = process.getuid?.() === 0;
  const command = root ? ['setpriv', ['--bounding-set=-all', '--inh-caps=-all', '--', process.execPath, CLI, ...args]] as const : [process.execPath, [CLI, ...args]] as const;
  return exec(command[0], [...command[1]], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

describe('auditing a database the auditor cannot write', () => {
  it('verifies, lists, exports and tells stories of it, and leaves it exactly as it was', async () => {
    const server = await spawnServer({ agent: 'reader', workspace });
    for (let i = 0; i < 3; i += 1) await server.call('list_logs', {});
    await server.close();
    // Folder and file writable by nobody (the auditor's view of them); no -wal or -shm left (the server wrote
    // everything back).
    chmodSync(workspace.dir, 0o555);
    chmodSync(workspace.db, 0o444);
    const before = { files: readdirSync(workspace.dir).sort(), size: statSync(workspace.db).size, mtime: statSync(workspace.db).mtimeMs };

    const verified = await asAuditor('audit', 'verify', '--db', workspace.db);
    expect(verified).toMatchObject({ code: 0 });
    expect(verified.stdout).toMatch(/Audit log intact: 6 rows/);
    const listed = await asAuditor('audit', 'list', '--db', workspace.db);
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim().split('\n')).toHaveLength(5);
    const exported = await asAuditor('audit', 'export', '--format', 'jsonl', '--db', workspace.db);
    expect(exported.stdout.trim().split('\n')).toHaveLength(6);
    // Nothing in this log is about an invoice: the story is looked for all the same, through every table it reads.
    const story = await asAuditor('audit', 'story', 'INV-1', '--db', workspace.db);
    expect(story.code).toBe(1);
    expect(story.stderr).toContain('Nothing in this database mentions "INV-1"');
    for (const answer of [verified, listed, exported, story]) expect(answer.stderr).not.toMatch(/readonly|read-only/);

    expect({ files: readdirSync(workspace.dir).sort(), size: statSync(workspace.db).size, mtime: statSync(workspace.db).mtimeMs }).toEqual(before);
  });
});
