/**
 * `db migrate`, `db copy` and `audit verify|export` on PostgreSQL through the built CLI: a log a real server wrote
 * over stdio on the simulator (a link made, paid, refunded, a refund refused) moves into a fresh PostgreSQL database
 * and verifies there with the same last hash; the refusals around it say what to do and never name the password.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY } from '../support/engine-world.js';
import { produced } from '../support/leak-watch.js';
import { freshDatabase, type TestDatabase } from '../support/postgres.js';
import { SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { CLI, createWorkspace, spawnServer, workspaceEnv, type Workspace } from '../support/stdio-server.js';

const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let workspace: Workspace;

async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const full = { ...workspaceEnv(workspace), ...env };
  for (const [key, value] of Object.entries(full)) if (value === undefined) delete full[key];
  let run: Run;
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: full as Record<string, string>, timeout: 60_000 });
    run = { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    run = { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
  produced('db command output', `${run.stdout}\n${run.stderr}`);
  return run;
}

const withoutDb = { MOLLIE_MCP_DB: undefined };

beforeAll(async () => {
  workspace = createWorkspace({ clerk: POLICY('clerk') });
  const server = await spawnServer({ agent: 'clerk', workspace });
  try {
    const link = String((await server.call('create_invoice_payment', { invoice_id: 'INV-1', amount: '100.00' })).structuredContent.payment_link_id);
    const paid = await cli(['simulate', 'pay', link]);
    expect(paid.code, paid.stderr).toBe(0);
    const payment = String((await server.call('get_payment_status', { payment_link_id: link })).structuredContent.payment_id);
    await server.call('refund', { payment_id: payment, amount: '20.00' });
    expect((await server.call('refund', { payment_id: payment, amount: '2000.00' })).isError).toBe(true);
  } finally {
    await server.close();
  }
}, 60_000);
afterAll(() => workspace?.remove());

describe('the shared store from the command line', () => {
  let database: TestDatabase;

  it('migrates a new database as its owner and grants the server role only what it needs', async () => {
    database = await freshDatabase({ migrated: false });
    const first = await cli(['db', 'migrate', '--grant-to', database.serverRole], { ...withoutDb, MOLLIE_MCP_DATABASE_URL: database.ownerUrl });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`migrated from version 0 to ${SCHEMA_VERSION}`);
    expect(first.stdout).toContain(`GRANT SELECT, INSERT ON audit_log TO "${database.serverRole}"`);
    const again = await cli(['db', 'migrate', '--database-url', database.ownerUrl], withoutDb);
    expect(again.stdout).toMatch(new RegExp(`is current \\(version ${SCHEMA_VERSION}\\)`));
  });

  it('copies the SQLite log into it with the chain intact: the same last hash on both, and the same export', async () => {
    const copied = await cli(['db', 'copy', '--from', workspace.db, '--to', database.serverUrl], withoutDb);
    expect(copied.code, copied.stdout + copied.stderr).toBe(0);
    expect(copied.stdout).toMatch(/Copied .* into mim_server_\w+@127\.0\.0\.1:\d+\/mim_\w+: \d+ audit_log, \d+ reservations/);
    const onFile = await cli(['audit', 'verify', '--db', workspace.db]);
    const onServer = await cli(['audit', 'verify'], { ...withoutDb, MOLLIE_MCP_DATABASE_URL: database.serverUrl });
    expect(onFile.code).toBe(0);
    expect(onServer.code, onServer.stderr).toBe(0);
    const lastHash = (text: string) => /last hash ([0-9a-f]{64})/.exec(text)?.[1];
    expect(lastHash(onServer.stdout)).toBeDefined();
    expect(lastHash(onServer.stdout)).toBe(lastHash(onFile.stdout));
    expect(copied.stdout).toContain(`the same last hash ${lastHash(onFile.stdout)}`);
    const fileExport = await cli(['audit', 'export', '--format', 'jsonl', '--db', workspace.db]);
    const serverExport = await cli(['audit', 'export', '--format', 'jsonl', '--database-url', database.serverUrl], withoutDb);
    expect(serverExport.stdout.split('\n').length).toBeGreaterThan(8);
    expect(serverExport.stdout).toBe(fileExport.stdout);
    // The copy keeps the store's facts: its kind (a simulator's store stays one) and the database id checkpoints name.
    const kind = await database.admin<{ value: string }>("SELECT value FROM store_meta WHERE key = 'mollie_kind'");
    expect(kind.rows).toEqual([{ value: 'simulator' }]);
    const ids = await database.admin<{ value: string }>("SELECT value FROM store_meta WHERE key = 'database_id'");
    const { default: Database } = await import('better-sqlite3');
    const file = new Database(workspace.db, { readonly: true });
    expect(ids.rows[0]!.value).toBe((file.prepare("SELECT value FROM store_meta WHERE key = 'database_id'").get() as { value: string }).value);
    file.close();
  });

  it('refuses to copy into a database that already holds a log, and changes nothing', async () => {
    const before = await database.admin<{ n: number }>('SELECT count(*)::int AS n FROM audit_log');
    const refused = await cli(['db', 'copy', '--from', workspace.db, '--to', database.serverUrl], withoutDb);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Not copied: .* is not empty \(\d+ audit rows, .*Copy into a new database/);
    expect((await database.admin<{ n: number }>('SELECT count(*)::int AS n FROM audit_log')).rows[0]!.n).toBe(before.rows[0]!.n);
  });

  it('refuses a store named twice, a wrong password without naming it, and a stdio client entry on PostgreSQL', async () => {
    const both = await cli(['audit', 'verify'], { MOLLIE_MCP_DB: workspace.db, MOLLIE_MCP_DATABASE_URL: database.serverUrl });
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('Both MOLLIE_MCP_DATABASE_URL (or --database-url) and MOLLIE_MCP_DB (or --db) are set');
    expect(both.stderr).not.toContain(database.serverPassword);

    const wrong = new URL(database.serverUrl);
    wrong.password = 'not-the-password-0123';
    const refused = await cli(['audit', 'verify'], { ...withoutDb, MOLLIE_MCP_DATABASE_URL: wrong.toString() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/PostgreSQL at mim_server_\w+@127\.0\.0\.1:\d+\/mim_\w+ refused the login: .*Check the user and password in MOLLIE_MCP_DATABASE_URL/);
    expect(refused.stderr).not.toContain('not-the-password-0123');

    // A client's own stdio server would need the database password in its configuration: refused, with what to do.
    const entry = await cli(['client-config', '--client', 'claude-desktop'], { ...withoutDb, MOLLIE_MCP_DATABASE_URL: database.serverUrl });
    expect(entry.code).toBe(2);
    expect(entry.stderr).toContain('Connect clients to the HTTP replicas instead (client-config --url)');
    expect(entry.stderr).not.toContain(database.serverPassword);

    const empty = await freshDatabase({ migrated: false });
    const nothing = await cli(['audit', 'verify'], { ...withoutDb, MOLLIE_MCP_DATABASE_URL: empty.ownerUrl });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('its schema was never created. Run `mollie-invoice-mcp db migrate`');
  });

  it('will not carry a broken log over', async () => {
    const { default: Database } = await import('better-sqlite3');
    const broken = `${workspace.dir}/broken.db`;
    const file = new Database(workspace.db, { readonly: true });
    await file.backup(broken);
    file.close();
    const edit = new Database(broken);
    edit.exec('DROP TRIGGER audit_log_no_update');
    edit.prepare("UPDATE audit_log SET amount_value = '1.00' WHERE seq = (SELECT min(seq) FROM audit_log WHERE amount_value IS NOT NULL)").run();
    edit.close();
    const target = await freshDatabase();
    const refused = await cli(['db', 'copy', '--from', broken, '--to', target.serverUrl], withoutDb);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/Not copied: the audit log in .*broken\.db is BROKEN at row \d+: its contents do not match its hash/);
    expect((await target.admin<{ n: number }>('SELECT count(*)::int AS n FROM audit_log')).rows[0]!.n).toBe(0);
  });
});
