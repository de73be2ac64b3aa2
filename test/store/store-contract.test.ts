/**
 * The store's contract, run on both: a SQLite file through better-sqlite3, and a PostgreSQL database (the run's
 * throwaway cluster) through the connection adapter, with the same audit log, reservations and transactions the
 * server uses. The race runs in separate processes, as replicas do: one thread cannot race itself.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog, verifyChain } from '../../src/audit/audit-log.js';
import { immediate, openDatabase, type SqliteDatabase } from '../../src/database.js';
import { Reservations } from '../../src/policy/reservations.js';
import { parseDatabaseUrl } from '../../src/store/database-url.js';
import { PostgresDatabase } from '../../src/store/postgres/pg-database.js';
import { freshDatabase } from '../support/postgres.js';

interface Adapter {
  name: string;
  /** A new, empty store: how to open a connection to it here, and how a child process names it. */
  create(): Promise<{ open(): SqliteDatabase; location: { db?: string; url?: string } }>;
}

const directories: string[] = [];
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

const adapters: Adapter[] = [
  {
    name: 'SQLite',
    async create() {
      const directory = mkdtempSync(join(tmpdir(), 'mim-store-'));
      directories.push(directory);
      const path = join(directory, 'store.db');
      return { open: () => openDatabase(path), location: { db: path } };
    },
  },
  {
    name: 'PostgreSQL',
    async create() {
      const database = await freshDatabase();
      return { open: () => new PostgresDatabase(parseDatabaseUrl(database.serverUrl), { appVersion: 'test' }) as unknown as SqliteDatabase, location: { url: database.serverUrl } };
    },
  },
];

const fixedClock = (): (() => Date) => {
  let tick = Date.parse('2026-12-01T10:00:00.000Z');
  return () => new Date((tick += 1000));
};

const DIST = new URL('../../dist/src/', import.meta.url).pathname;

/**
 * A replica, reduced to the gate's admission of refunds: each in one write transaction, read what the budget used,
 * refuse or reserve, and the decision row. Prints how many it allowed.
 */
function admissionsInChild(location: { db?: string; url?: string }, calls: number, minor: number, capMinor: number, start: number): Promise<number> {
  const script = `
    const { openDatabase, immediateWhenFree } = await import(${JSON.stringify(`${DIST}database.js`)});
    const { AuditLog } = await import(${JSON.stringify(`${DIST}audit/audit-log.js`)});
    const { Reservations } = await import(${JSON.stringify(`${DIST}policy/reservations.js`)});
    const { PostgresDatabase } = await import(${JSON.stringify(`${DIST}store/postgres/pg-database.js`)});
    const { parseDatabaseUrl } = await import(${JSON.stringify(`${DIST}store/database-url.js`)});
    const location = ${JSON.stringify(location)};
    const db = location.url ? new PostgresDatabase(parseDatabaseUrl(location.url), { appVersion: 'test' }) : openDatabase(location.db);
    const audit = new AuditLog(db);
    const reservations = new Reservations(db);
    while (Date.now() < ${start});
    let allowed = 0;
    await Promise.all(Array.from({ length: ${calls} }, (_, i) => immediateWhenFree(db, () => {
      const callId = 'call-' + process.pid + '-' + i;
      const used = reservations.reservedSince('refund-desk', 'refund', 'EUR', '2000-01-01T00:00:00.000Z');
      const ok = used.minor + ${minor} <= ${capMinor};
      const row = audit.append({ call_id: callId, kind: 'decision', agent: 'refund-desk', tool: 'refund', decision: ok ? 'allowed' : 'denied' });
      if (ok) { reservations.reserve({ callId, agent: 'refund-desk', tool: 'refund', money: { minor: ${minor}, currency: 'EUR' }, at: row.at }); allowed += 1; }
    })));
    db.close();
    console.log(allowed);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`a replica failed (${code}): ${err}`))));
  });
}

describe.each(adapters)('the store on $name', (adapter) => {
  it('chains appended rows; verify and the export agree', async () => {
    const db = (await adapter.create()).open();
    try {
      const audit = new AuditLog(db, fixedClock());
      const first = audit.append({ call_id: 'c1', kind: 'decision', agent: 'a', tool: 'refund', decision: 'allowed' });
      const second = audit.append({ call_id: 'c1', kind: 'outcome', outcome: 'ok', duration_ms: 12 });
      expect([first.seq, second.seq]).toEqual([1, 2]);
      expect(second.prev_hash).toBe(first.hash);
      expect(verifyChain(db)).toEqual({ ok: true, rows: 2, lastHash: second.hash });
      expect([...audit.rows()].map((row) => [row.seq, row.call_id, row.kind, row.duration_ms])).toEqual([[1, 'c1', 'decision', null], [2, 'c1', 'outcome', 12]]);
    } finally {
      db.close();
    }
  });

  it('hashes a row the same on either store, so a copied log verifies', async () => {
    const db = (await adapter.create()).open();
    try {
      const row = new AuditLog(db, fixedClock()).append({ call_id: 'same', kind: 'event', agent: 'a', reason: 'people_reloaded', reason_message: 'caf\u00e9 \ud800', duration_ms: 3 });
      // The value every store must give for this row (computed once, on SQLite, when this test was written).
      expect(row.hash).toBe('c049d2cbd69041e0a5813508927970629eaada24e10c35292eab46019f0892f4');
      // And as stored: the lone surrogate was made well-formed before it was hashed, not by the database after.
      expect(verifyChain(db)).toMatchObject({ ok: true, rows: 1 });
    } finally {
      db.close();
    }
  });

  it('stores a NUL in a client\'s name as U+FFFD on both, hashed as stored: the call is still recorded', async () => {
    const db = (await adapter.create()).open();
    try {
      const row = new AuditLog(db).append({ call_id: 'nul', kind: 'decision', client_name: 'evil\u0000client', decision: 'denied' });
      expect(row.client_name).toBe('evil\ufffdclient');
      expect(db.prepare<[], { client_name: string }>("SELECT client_name FROM audit_log WHERE call_id = 'nul'").get()).toEqual({ client_name: 'evil\ufffdclient' });
      expect(verifyChain(db)).toMatchObject({ ok: true, rows: 1 });
    } finally {
      db.close();
    }
  });

  it('rolls a failed transaction back whole: no row, no reservation', async () => {
    const db = (await adapter.create()).open();
    try {
      const audit = new AuditLog(db);
      const reservations = new Reservations(db);
      expect(() =>
        immediate(db, () => {
          const row = audit.append({ call_id: 'gone', kind: 'decision', decision: 'allowed' });
          reservations.reserve({ callId: 'gone', agent: 'a', tool: 'refund', money: { minor: 500, currency: 'EUR' }, at: row.at });
          throw new Error('Mollie was not asked');
        }),
      ).toThrow('Mollie was not asked');
      expect(verifyChain(db)).toMatchObject({ ok: true, rows: 0 });
      expect(reservations.reservedSince('a', 'refund', 'EUR', '2000-01-01T00:00:00.000Z')).toEqual({ minor: 0, count: 0 });
      // The connection is usable after the rollback.
      expect(audit.append({ call_id: 'next', kind: 'event' }).seq).toBe(1);
    } finally {
      db.close();
    }
  });

  it('sums a budget: released reservations give their money back, approved ones are not unapproved', async () => {
    const db = (await adapter.create()).open();
    try {
      const reservations = new Reservations(db);
      const at = '2026-12-01T10:00:00.000Z';
      immediate(db, () => {
        reservations.reserve({ callId: 'r1', agent: 'a', tool: 'refund', money: { minor: 1000, currency: 'EUR' }, at });
        reservations.reserve({ callId: 'r2', agent: 'a', tool: 'refund', money: { minor: 250, currency: 'EUR' }, at, approved: true });
        reservations.reserve({ callId: 'r3', agent: 'a', tool: 'refund', money: { minor: 99, currency: 'EUR' }, at });
        reservations.reserve({ callId: 'r4', agent: 'a', tool: 'refund', money: { minor: 7, currency: 'USD' }, at });
        reservations.reserve({ callId: 'old', agent: 'a', tool: 'refund', money: { minor: 5000, currency: 'EUR' }, at: '2026-11-29T10:00:00.000Z' });
      });
      reservations.settle('r3', 'released');
      reservations.settle('r1', 'spent');
      // Settled once: a late "released" does not give back money that was spent.
      reservations.settle('r1', 'released');
      const since = '2026-11-30T10:00:00.000Z';
      expect(reservations.reservedSince('a', 'refund', 'EUR', since)).toEqual({ minor: 1250, count: 2 });
      expect(reservations.unapprovedSince('a', 'refund', 'EUR', since)).toBe(1000);
    } finally {
      db.close();
    }
  });

  it('three replica processes racing 60 refunds against a daily cap stop exactly at it, on one unbroken chain', async () => {
    const store = await adapter.create();
    // Make the schema first: the race is about the budget, not the start.
    store.open().close();
    const start = Date.now() + 1500;
    // 60 calls of 7.00 against 150.00 a day: 21 fit (147.00), the 22nd would make 154.00.
    const allowed = await Promise.all([0, 1, 2].map(() => admissionsInChild(store.location, 20, 700, 15_000, start)));
    expect(allowed.reduce((sum, n) => sum + n, 0)).toBe(21);
    const db = store.open();
    try {
      expect(new Reservations(db).reservedSince('refund-desk', 'refund', 'EUR', '2000-01-01T00:00:00.000Z')).toEqual({ minor: 14_700, count: 21 });
      expect(verifyChain(db)).toMatchObject({ ok: true, rows: 60 });
    } finally {
      db.close();
    }
  }, 60_000);
});
