/**
 * Signed checkpoints catch what the hash chain cannot: a log whose newest rows were cut off, a database file swapped
 * for an older copy, and a forged checkpoint. The built CLI makes the key, a stdio server signs checkpoints while it
 * serves and at shutdown, and `audit verify --checkpoints` judges the log against them.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, createWorkspace, spawnServer } from '../support/stdio-server.js';

const exec = promisify(execFile);
const workspace = createWorkspace({ reader: 'agent: reader\nrate_limit: { per_minute: 100000 }\ntools:\n  list_logs: { scope: own }\n' });
afterAll(() => workspace.remove());

const key = join(workspace.dir, 'signing-key.pem');
const directory = join(workspace.dir, 'checkpoints');
const env = { MOLLIE_MCP_SIGNING_KEY: key, MOLLIE_MCP_CHECKPOINT_DIR: directory, MOLLIE_MCP_CHECKPOINT_ROWS: '10' };

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: workspace.dir } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

async function serveAndCall(calls: number): Promise<void> {
  const server = await spawnServer({ agent: 'reader', workspace, env });
  try {
    for (let i = 0; i < calls; i += 1) expect((await server.call('list_logs', { limit: 1 })).isError).toBe(false);
  } finally {
    await server.close();
  }
}

const verify = (db = workspace.db) => cli('audit', 'verify', '--db', db, '--checkpoints', directory, '--public-key', `${key}.pub`);

describe('signed checkpoints of the audit log', () => {
  it('keys create writes a private key only its owner reads, prints the public key, and never overwrites', async () => {
    const made = await cli('keys', 'create', '--out', key);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/Key id: [0-9a-f]{16}\n-----BEGIN PUBLIC KEY-----/);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, 'utf8')).toContain('PRIVATE KEY');
    expect(made.stdout).not.toContain('PRIVATE KEY');
    const again = await cli('keys', 'create', '--out', key);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; a signing key is never overwritten/);
  });

  it('are written while serving and at shutdown, and a whole log reaches every one of them', async () => {
    await serveAndCall(12);
    const lines = readFileSync(join(directory, 'checkpoints.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { seq: number; why: string });
    expect(lines.map((line) => line.why)).toContain('rows');
    expect(lines.at(-1)).toMatchObject({ why: 'shutdown', seq: 24 });
    const checked = await verify();
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/Audit log intact: 24 rows[\s\S]*Checkpoints hold: \d+ signed checkpoint\(s\) by key [0-9a-f]{16}, the latest at row 24/);
  });

  it('catch a log whose newest rows were cut off, which the chain alone calls intact', async () => {
    const cut = join(workspace.dir, 'cut.db');
    copyFileSync(workspace.db, cut);
    const db = new Database(cut);
    db.exec('DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 20;');
    db.close();
    const plain = await cli('audit', 'verify', '--db', cut);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/intact: 20 rows/);
    const checked = await verify(cut);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/Checkpoint FAILED at \S+checkpoints\.jsonl:\d+: it says the log reached row 24 \(at [^)]+\), but the log ends at row 20: rows were cut off the end, or the file was replaced by an older copy/);
  });

  it('catch a database file replaced by an older copy of itself', async () => {
    const older = join(workspace.dir, 'older.db');
    copyFileSync(workspace.db, older);
    await serveAndCall(3);
    expect((await verify()).code).toBe(0);
    const checked = await verify(older);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/it says the log reached row 30/);
  });

  it('catch a checkpoint that was forged, or signed by another key, naming its line', async () => {
    const file = join(directory, 'checkpoints.jsonl');
    const original = readFileSync(file, 'utf8');
    const lines = original.trim().split('\n');
    const forged = { ...(JSON.parse(lines[0]!) as Record<string, unknown>), seq: 2 };
    writeFileSync(file, `${[JSON.stringify(forged), ...lines.slice(1)].join('\n')}\n`);
    const checked = await verify();
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/checkpoints\.jsonl:1: its signature does not verify: the checkpoint was forged or altered/);
    writeFileSync(file, original);
    const other = join(workspace.dir, 'other-key.pem');
    expect((await cli('keys', 'create', '--out', other)).code).toBe(0);
    const wrongKey = await cli('audit', 'verify', '--db', workspace.db, '--checkpoints', directory, '--public-key', `${other}.pub`);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toMatch(/checkpoints\.jsonl:1: it is signed by key [0-9a-f]{16}, not by [0-9a-f]{16}/);
  });

  it('refuse to start with half the settings, or a key others can read', async () => {
    await expect(spawnServer({ agent: 'reader', workspace, env: { MOLLIE_MCP_SIGNING_KEY: key } })).rejects.toThrow();
    const loose = join(workspace.dir, 'loose.pem');
    copyFileSync(key, loose);
    const { chmodSync } = await import('node:fs');
    chmodSync(loose, 0o644);
    const refused = await exec(process.execPath, [CLI, 'serve', '--simulator', '--policies', workspace.policies, '--db', join(workspace.dir, 'x.db')], {
      env: { PATH: process.env.PATH ?? '', HOME: workspace.dir, MOLLIE_MCP_SIGNING_KEY: loose, MOLLIE_MCP_CHECKPOINT_DIR: directory },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toMatch(/can be read by others; make it readable by the server's user only \(chmod 600\)/);
  });
});
