/**
 * What only the PostgreSQL store has to prove: a log the server's role cannot rewrite, a chain that cannot fork,
 * migrations that replicas can race, a write lock that gives way instead of holding the thread, and messages that
 * never name the password.
 */
import { execFileSync, spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AuditLog, verifyChain } from '../../src/audit/audit-log.js';
import { immediate, immediateWhenFree, type SqliteDatabase } from '../../src/database.js';
import { parseDatabaseUrl } from '../../src/store/database-url.js';
import { PostgresDatabase, translate } from '../../src/store/postgres/pg-database.js';
import { SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { adminQuery, adminUrl, freshDatabase } from '../support/postgres.js';

const open = (url: string, migrate = true): SqliteDatabase => new PostgresDatabase(parseDatabaseUrl(url), { appVersion: 'test', migrate }) as unknown as SqliteDatabase;

function withRows(url: string): SqliteDatabase {
  const db = open(url);
  const audit = new AuditLog(db);
  audit.append({ call_id: 'c1', kind: 'decision', agent: 'refund-desk', decision: 'allowed' });
  audit.append({ call_id: 'c1', kind: 'outcome', outcome: 'ok' });
  return db;
}

const DIST = new URL('../../dist/src/', import.meta.url).pathname;

describe('the audit log on PostgreSQL', () => {
  it('cannot be changed, deleted, truncated or unguarded by the server role, which owns nothing', async () => {
    const database = await freshDatabase();
    const db = withRows(database.serverUrl);
    try {
      const asServer = (sql: string) => adminQuery(database.serverUrl, sql);
      await expect(asServer("UPDATE audit_log SET agent = 'someone-else' WHERE seq = 1")).rejects.toThrow(/permission denied/);
      await expect(asServer('DELETE FROM audit_log WHERE seq = 2')).rejects.toThrow(/permission denied/);
      await expect(asServer('TRUNCATE audit_log')).rejects.toThrow(/permission denied/);
      await expect(asServer('DROP TRIGGER audit_log_no_change ON audit_log')).rejects.toThrow(/must be owner/);
      await expect(asServer('ALTER TABLE audit_log DISABLE TRIGGER ALL')).rejects.toThrow(/must be owner/);
      // Even the owner and the superuser meet the triggers.
      await expect(adminQuery(database.ownerUrl, "UPDATE audit_log SET agent = 'x' WHERE seq = 1")).rejects.toThrow('the audit log is append-only: rows cannot be changed');
      await expect(database.admin('DELETE FROM audit_log')).rejects.toThrow('the audit log is append-only: rows cannot be deleted');
      await expect(database.admin('TRUNCATE audit_log')).rejects.toThrow('the audit log is append-only: rows cannot be truncated');
      expect(verifyChain(db)).toMatchObject({ ok: true, rows: 2 });
    } finally {
      db.close();
    }
  });

  it('upgrades a 0.7 database (schema 1) in place, and the role that served it may use the new table', async () => {
    const database = await freshDatabase();
    // What 0.7.0 left: schema 1, the server role granted on its tables; client_confirmations did not exist yet.
    await adminQuery(database.ownerUrl, 'DROP TABLE client_confirmations');
    await adminQuery(database.ownerUrl, 'DELETE FROM schema_version WHERE version >= 2');
    await expect(adminQuery(database.serverUrl, 'SELECT 1 FROM client_confirmations')).rejects.toThrow(/does not exist/);
    // The server's own role may not migrate; the owner's may, and the serving role is granted on the new table.
    expect(() => open(database.serverUrl)).toThrow(/needs 2, but its role may not create tables/);
    open(database.ownerUrl).close();
    expect((await database.admin<{ version: number }>('SELECT max(version) AS version FROM schema_version')).rows[0]!.version).toBe(SCHEMA_VERSION);
    await adminQuery(database.serverUrl, "INSERT INTO client_confirmations (token_sha256, call_id, agent, tool, fingerprint, asked_at, expires_at, audit_columns) VALUES ('t', 'c', 'a', 'refund', 'f', 'x', 'y', '{}')");
    await adminQuery(database.serverUrl, "UPDATE client_confirmations SET answer = 'accepted', answered_at = 'z' WHERE token_sha256 = 't'");
    open(database.serverUrl).close();
  }, 30_000);

  it('fails loudly on a fork: a second row 2, a row off the end or a wrong prev_hash is refused', async () => {
    const database = await freshDatabase();
    const db = withRows(database.serverUrl);
    try {
      const rows = (await database.admin<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq')).rows;
      const insert = (seq: number, prev: string, hash: string) =>
        adminQuery(database.serverUrl, "INSERT INTO audit_log (seq, call_id, kind, at, prev_hash, hash) VALUES ($1, 'forged', 'event', '2026-12-01T00:00:00.000Z', $2, $3)", [seq, prev, hash]);
      await expect(insert(2, rows[0]!.hash, 'f'.repeat(64))).rejects.toThrow(/next seq \(3 expected, 2 given\)/);
      await expect(insert(5, rows[1]!.hash, 'f'.repeat(64))).rejects.toThrow(/next seq \(3 expected, 5 given\)/);
      await expect(insert(3, rows[0]!.hash, 'f'.repeat(64))).rejects.toThrow(/prev_hash is the hash of the row before it/);
      await expect(insert(0, '0'.repeat(64), 'e'.repeat(64))).rejects.toThrow();
      expect(verifyChain(db)).toMatchObject({ ok: true, rows: 2 });
    } finally {
      db.close();
    }
  });

  it('lets four replicas that start at the same moment on an empty database migrate it once', async () => {
    const database = await freshDatabase({ migrated: false });
    const start = Date.now() + 1500;
    const script = (n: number) => `
      const { PostgresDatabase } = await import(${JSON.stringify(`${DIST}store/postgres/pg-database.js`)});
      const { parseDatabaseUrl } = await import(${JSON.stringify(`${DIST}store/database-url.js`)});
      const { AuditLog } = await import(${JSON.stringify(`${DIST}audit/audit-log.js`)});
      while (Date.now() < ${start});
      const db = new PostgresDatabase(parseDatabaseUrl(${JSON.stringify(database.ownerUrl)}), { appVersion: 'test' });
      new AuditLog(db).append({ call_id: 'start-${n}', kind: 'event' });
      db.close();
    `;
    const codes = await Promise.all([0, 1, 2, 3].map((n) => new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script(n)]);
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('exit', (code) => resolve(`${code}${err}`));
    })));
    expect(codes).toEqual(['0', '0', '0', '0']);
    const versions = (await database.admin<{ version: number }>('SELECT version FROM schema_version ORDER BY version')).rows;
    expect(versions.map((row) => row.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect((await database.admin('SELECT * FROM audit_chain_head')).rowCount).toBe(1);
    expect((await database.admin("SELECT * FROM store_meta WHERE key = 'database_id'")).rowCount).toBe(1);
    const db = open(database.ownerUrl);
    expect(verifyChain(db)).toMatchObject({ ok: true, rows: 4 });
    db.close();
  }, 30_000);

  it('tells a server role that may not create tables to run db migrate, and refuses a newer schema', async () => {
    const empty = await freshDatabase({ migrated: false });
    expect(() => open(empty.serverUrl)).toThrow(new RegExp(`needs ${SCHEMA_VERSION}, but its role may not create tables.*Run \`mollie-invoice-mcp db migrate\` with the owner's MOLLIE_MCP_DATABASE_URL first`));
    const newer = await freshDatabase();
    await newer.admin("INSERT INTO schema_version (version, description, applied_by) VALUES (99, 'from the future', 'mollie-invoice-mcp 9.0.0')");
    expect(() => open(newer.serverUrl)).toThrow(new RegExp(`schema is at version 99, newer than this server's ${SCHEMA_VERSION}: .*Upgrade this one`));
  });

  it('names no password when the login is refused', async () => {
    const database = await freshDatabase();
    const wrong = new URL(database.serverUrl);
    wrong.password = `${database.serverPassword}x`;
    let error: Error | null = null;
    try {
      open(wrong.toString());
    } catch (caught) {
      error = caught as Error;
    }
    expect(error?.message).toMatch(new RegExp(`PostgreSQL at ${database.serverRole}@127\\.0\\.0\\.1:\\d+/${database.name} refused the login: .*password authentication failed.*Check the user and password in MOLLIE_MCP_DATABASE_URL`));
    expect(error?.message).not.toContain(database.serverPassword);
    expect(String(error?.stack)).not.toContain(database.serverPassword);
  });

  it('gives way while another replica holds the write lock, without holding the thread, then writes', async () => {
    const database = await freshDatabase();
    const db = open(database.serverUrl);
    const other = await import('pg').then(({ default: pg }) => new pg.Client({ connectionString: database.serverUrl }));
    await other.connect();
    try {
      // Another replica's write transaction holds the lock for 600 ms.
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM audit_chain_head FOR UPDATE');
      const released = new Promise((resolve) => setTimeout(() => void other.query('COMMIT').then(resolve), 600));
      let ticks = 0;
      const timer = setInterval(() => (ticks += 1), 20);
      const started = Date.now();
      const row = await immediateWhenFree(db, () => new AuditLog(db).append({ call_id: 'waited', kind: 'event' }));
      clearInterval(timer);
      await released;
      expect(row.seq).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      // The event loop ran while it waited: timers fired (a blocked thread would fire none).
      expect(ticks).toBeGreaterThan(10);
      // A deadlock or serialization failure runs the transaction again, as a busy lock does.
      let attempts = 0;
      await immediateWhenFree(db, () => {
        attempts += 1;
        if (attempts < 3) throw Object.assign(new Error('deadlock detected'), { code: attempts === 1 ? '40P01' : '40001' });
      });
      expect(attempts).toBe(3);
    } finally {
      await other.end();
      db.close();
    }
  });

  it('never takes a late answer for the next statement\'s: a statement given up on replaces the connection', async () => {
    const database = await freshDatabase();
    const db = new PostgresDatabase(parseDatabaseUrl(database.serverUrl), { appVersion: 'test', answerDeadlineMs: 700 });
    try {
      db.exec('BEGIN IMMEDIATE');
      expect(() => db.prepare('SELECT pg_sleep(1.5) AS slept, 1 AS late').get()).toThrow(/did not answer within 1 s/);
      expect(db.inTransaction).toBe(false);
      // The next statement gets its own answer, on a new connection, with the old transaction (and its lock) gone.
      expect(db.prepare<[], { fresh: number }>('SELECT 2 AS fresh').get()).toEqual({ fresh: 2 });
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(db.prepare<[], { again: number }>('SELECT 3 AS again').get()).toEqual({ again: 3 });
      const row = immediate(db as unknown as SqliteDatabase, () => new AuditLog(db as unknown as SqliteDatabase).append({ call_id: 'after', kind: 'event' }));
      expect(row.seq).toBe(1);
    } finally {
      db.close();
    }
  });

  it('fails the rest of a transaction whose connection died, instead of going on without its lock', async () => {
    const database = await freshDatabase();
    const db = open(database.serverUrl);
    try {
      const audit = new AuditLog(db);
      const pid = db.prepare<[], { pid: number }>('SELECT pg_backend_pid() AS pid').get()!.pid;
      expect(() =>
        immediate(db, () => {
          audit.append({ call_id: 'before', kind: 'event' });
          // Synchronously, as a superuser: the transaction's connection is gone before its next statement.
          expect(execFileSync('psql', [adminUrl(), '-qAt', '-c', `SELECT pg_terminate_backend(${pid})`], { encoding: 'utf8' }).trim()).toBe('t');
          audit.append({ call_id: 'after-1', kind: 'event' });
          audit.append({ call_id: 'after-2', kind: 'event' });
        }),
      ).toThrow();
      expect(db.inTransaction).toBe(false);
      // Nothing of it was committed; the next transaction runs on a new connection.
      expect(audit.append({ call_id: 'next', kind: 'event' }).seq).toBe(1);
      expect(db.prepare<[], { call_id: string }>('SELECT call_id FROM audit_log ORDER BY seq').all()).toEqual([{ call_id: 'next' }]);
    } finally {
      db.close();
    }
  });

  it('commits with fsync whatever the database\'s default, and lowers it only for read-only calls', async () => {
    const database = await freshDatabase();
    await database.admin(`ALTER DATABASE ${database.name} SET synchronous_commit = off`);
    const db = open(database.serverUrl);
    try {
      const setting = () => db.prepare<[], { synchronous_commit: string }>('SHOW synchronous_commit').get()!.synchronous_commit;
      expect(immediate(db, setting, 'full')).toBe('on');
      expect(immediate(db, setting, 'normal')).toBe('off');
      expect(immediate(db, setting, 'full')).toBe('on');
    } finally {
      db.close();
    }
  });

  it('has every table and column the SQLite schema has, so the same statements run on both', async () => {
    const { openDatabase } = await import('../../src/database.js');
    const { SqliteSimulatorState } = await import('../../src/mollie/simulator-state.js');
    const sqlite = openDatabase(':memory:');
    new SqliteSimulatorState(sqlite);
    const tables = sqlite.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all().map((row) => row.name);
    const database = await freshDatabase();
    const missing: string[] = [];
    for (const table of tables) {
      const wanted = (sqlite.pragma(`table_info(${table})`) as { name: string }[]).map((column) => column.name);
      const present = new Set((await database.admin<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_name = $1', [table])).rows.map((row) => row.column_name));
      for (const column of wanted) if (!present.has(column)) missing.push(`${table}.${column}`);
    }
    sqlite.close();
    expect(tables.length).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it('turns the SQL written for SQLite into PostgreSQL\'s', () => {
    expect(translate("SELECT * FROM t WHERE a = ? AND b = '?' AND c IS NOT ? AND d IS ?").text).toBe("SELECT * FROM t WHERE a = $1 AND b = '?' AND c IS DISTINCT FROM $2 AND d IS NOT DISTINCT FROM $3");
    expect(translate('UPDATE t SET a = @a WHERE id = @id AND a IS NOT @a').text).toBe('UPDATE t SET a = $1 WHERE id = $2 AND a IS DISTINCT FROM $1');
    expect(translate('INSERT OR IGNORE INTO call_times (agent, at_ms, call_id) VALUES (?, ?, ?)').text).toBe('INSERT INTO call_times (agent, at_ms, call_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING');
    expect(translate('SELECT x FROM audit_log d INDEXED BY audit_call WHERE seq IN (SELECT value FROM json_each(@ids))').text).toBe('SELECT x FROM audit_log d  WHERE seq IN (SELECT value FROM json_array_elements_text($1::json))');
    expect(translate('BEGIN IMMEDIATE').kind).toBe('begin');
    expect(translate('PRAGMA busy_timeout = 25').kind).toBe('pragma');
  });
});
