/**
 * What only the PostgreSQL store has to prove: a log the server's role cannot rewrite, a chain that cannot fork,
 * migrations that replicas can race, retried deadlocks, and messages that never name the password.
 */
import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/store/database-url.js';
import { PostgresStore, TRANSACTION_ATTEMPTS } from '../../src/store/postgres/postgres-store.js';
import { SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { adminQuery, freshDatabase } from '../support/postgres.js';

const open = (url: string, migrate = true) => PostgresStore.open(parseDatabaseUrl(url), { appVersion: 'test', migrate });

async function withRows(url: string): Promise<PostgresStore> {
  const store = await open(url);
  await store.transaction(async (tx) => {
    await tx.append({ call_id: 'c1', kind: 'decision', agent: 'refund-desk', decision: 'allowed' });
    await tx.append({ call_id: 'c1', kind: 'outcome', outcome: 'ok' });
  });
  return store;
}

describe('the audit log on PostgreSQL', () => {
  it('cannot be changed, deleted, truncated or unguarded by the server role, which owns nothing', async () => {
    const database = await freshDatabase();
    const store = await withRows(database.serverUrl);
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
      expect(await store.verify()).toMatchObject({ ok: true, rows: 2 });
    } finally {
      await store.close();
    }
  });

  it('fails loudly on a fork: a second row 2, a row off the end or a wrong prev_hash is refused', async () => {
    const database = await freshDatabase();
    const store = await withRows(database.serverUrl);
    try {
      const rows = (await database.admin<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq')).rows;
      const insert = (seq: number, prev: string, hash: string) =>
        adminQuery(database.serverUrl, "INSERT INTO audit_log (seq, call_id, kind, at, prev_hash, hash) VALUES ($1, 'forged', 'event', '2026-12-01T00:00:00.000Z', $2, $3)", [seq, prev, hash]);
      await expect(insert(2, rows[0]!.hash, 'f'.repeat(64))).rejects.toThrow(/next seq \(3 expected, 2 given\)/);
      await expect(insert(5, rows[1]!.hash, 'f'.repeat(64))).rejects.toThrow(/next seq \(3 expected, 5 given\)/);
      await expect(insert(3, rows[0]!.hash, 'f'.repeat(64))).rejects.toThrow(/prev_hash is the hash of the row before it/);
      await expect(insert(0, '0'.repeat(64), 'e'.repeat(64))).rejects.toThrow();
      expect(await store.verify()).toMatchObject({ ok: true, rows: 2 });
    } finally {
      await store.close();
    }
  });

  it('lets replicas that start together on an empty database migrate it once', async () => {
    const database = await freshDatabase({ migrated: false });
    const stores = await Promise.all(Array.from({ length: 4 }, () => open(database.ownerUrl)));
    try {
      const versions = (await database.admin<{ version: number }>('SELECT version FROM schema_version ORDER BY version')).rows;
      expect(versions.map((row) => row.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
      expect((await database.admin('SELECT * FROM audit_chain_head')).rowCount).toBe(1);
      expect((await database.admin("SELECT * FROM store_meta WHERE key = 'database_id'")).rowCount).toBe(1);
      await Promise.all(stores.map((store, i) => store.transaction((tx) => tx.append({ call_id: `start-${i}`, kind: 'event' }))));
      expect(await stores[0]!.verify()).toMatchObject({ ok: true, rows: 4 });
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('tells a server role that may not create tables to run db migrate, and refuses a newer schema', async () => {
    const empty = await freshDatabase({ migrated: false });
    await expect(open(empty.serverUrl)).rejects.toThrow(/needs 1, but its role may not create tables.*Run `mollie-invoice-mcp db migrate` with the owner's MOLLIE_MCP_DATABASE_URL first/);
    const newer = await freshDatabase();
    await newer.admin("INSERT INTO schema_version (version, description, applied_by) VALUES (99, 'from the future', 'mollie-invoice-mcp 9.0.0')");
    await expect(open(newer.serverUrl)).rejects.toThrow(/schema is at version 99, newer than this server's 1: .*Upgrade this one/);
  });

  it('names no password when the login is refused', async () => {
    const database = await freshDatabase();
    const wrong = new URL(database.serverUrl);
    wrong.password = `${database.serverPassword}x`;
    const error = await open(wrong.toString()).then(() => null, (caught: Error) => caught);
    expect(error?.message).toMatch(new RegExp(`PostgreSQL at ${database.serverRole}@127\\.0\\.0\\.1:\\d+/${database.name} refused the login: .*password authentication failed.*Check the user and password in MOLLIE_MCP_DATABASE_URL`));
    expect(error?.message).not.toContain(database.serverPassword);
    expect(String(error?.stack)).not.toContain(database.serverPassword);
  });

  it('runs a transaction again when PostgreSQL breaks a deadlock, and commits it once', async () => {
    const database = await freshDatabase();
    const [one, two] = await Promise.all([open(database.serverUrl), open(database.serverUrl)]);
    try {
      let runs = 0;
      let bothHoldOne!: () => void;
      const held = new Promise<void>((resolve) => (bothHoldOne = resolve));
      let holding = 0;
      // Two budgets locked in opposite orders: PostgreSQL aborts one transaction, which runs again and succeeds.
      const crossing = (store: PostgresStore, first: string, second: string) =>
        store.transaction(async (tx) => {
          runs += 1;
          await tx.lockBudget('a', 'refund', first);
          if (++holding === 2) bothHoldOne();
          await held;
          await tx.lockBudget('a', 'refund', second);
          await tx.append({ call_id: `deadlock-${first}`, kind: 'event' });
        });
      await Promise.all([crossing(one!, 'EUR', 'USD'), crossing(two!, 'USD', 'EUR')]);
      expect(runs).toBe(3);
      expect(await one!.verify()).toMatchObject({ ok: true, rows: 2 });
      // A failure that is not a deadlock or serialization failure is not retried.
      let tries = 0;
      await expect(one!.transaction(async () => {
        tries += 1;
        throw Object.assign(new Error('unique'), { code: '23505' });
      })).rejects.toThrow('unique');
      expect(tries).toBe(1);
      // A deadlock every time gives up after the bounded number of attempts, and says so.
      let attempts = 0;
      await expect(one!.transaction(async () => {
        attempts += 1;
        throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      })).rejects.toThrow(/deadlock detected/);
      expect(attempts).toBe(TRANSACTION_ATTEMPTS);
    } finally {
      await Promise.all([one!.close(), two!.close()]);
    }
  });
});
