/**
 * The storage port's contract, run on both adapters: a SQLite file and a PostgreSQL database (the run's throwaway
 * cluster). "Replicas" are separate store instances, each with its own connections, on one file or one database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/store/database-url.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { Store, StoreTransaction } from '../../src/store/store.js';
import { freshDatabase } from '../support/postgres.js';

interface Adapter {
  name: string;
  /** A new, empty store, and a way to open more instances of the same one (replicas). */
  create(clock?: () => Date): Promise<{ open(clock?: () => Date): Promise<Store> }>;
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
      return { open: async (clock) => SqliteStore.open(path, clock) };
    },
  },
  {
    name: 'PostgreSQL',
    async create() {
      const database = await freshDatabase();
      return { open: async (clock) => PostgresStore.open(parseDatabaseUrl(database.serverUrl), { appVersion: 'test', ...(clock ? { clock } : {}) }) };
    },
  },
];

const fixedClock = (): (() => Date) => {
  let tick = Date.parse('2026-12-01T10:00:00.000Z');
  return () => new Date((tick += 1000));
};

/** The gate's admission, reduced to the budget: lock, sum, reserve or refuse, and the decision row, in one transaction. */
async function admit(store: Store, callId: string, minor: number, perDayMinor: number): Promise<boolean> {
  return store.transaction(async (tx: StoreTransaction) => {
    await tx.lockBudget('refund-desk', 'refund', 'EUR');
    const used = await tx.reservedSince('refund-desk', 'refund', 'EUR', '2026-01-01T00:00:00.000Z');
    const allowed = used.minor + minor <= perDayMinor;
    const row = await tx.append({ call_id: callId, kind: 'decision', agent: 'refund-desk', tool: 'refund', decision: allowed ? 'allowed' : 'denied', amount_value: (minor / 100).toFixed(2), amount_currency: 'EUR' });
    if (allowed) await tx.reserve({ callId, agent: 'refund-desk', tool: 'refund', money: { minor, currency: 'EUR' }, at: row.at });
    return allowed;
  });
}

describe.each(adapters)('the storage port on $name', (adapter) => {
  it('chains appended rows, and verify and the head agree', async () => {
    const store = await (await adapter.create()).open(fixedClock());
    try {
      const first = await store.transaction((tx) => tx.append({ call_id: 'c1', kind: 'decision', agent: 'a', tool: 'refund', decision: 'allowed' }));
      const second = await store.transaction((tx) => tx.append({ call_id: 'c1', kind: 'outcome', outcome: 'ok', duration_ms: 12 }));
      expect(first.seq).toBe(1);
      expect(second.seq).toBe(2);
      expect(second.prev_hash).toBe(first.hash);
      expect(await store.head()).toEqual({ rows: 2, hash: second.hash });
      expect(await store.verify()).toEqual({ ok: true, rows: 2, lastHash: second.hash });
      const rows = [];
      for await (const row of store.rows()) rows.push(row);
      expect(rows.map((row) => [row.seq, row.call_id, row.kind, row.duration_ms])).toEqual([[1, 'c1', 'decision', null], [2, 'c1', 'outcome', 12]]);
      expect(await store.databaseId()).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await store.close();
    }
  });

  it('hashes a row the same on either store, so a copied log verifies', async () => {
    const store = await (await adapter.create()).open(fixedClock());
    try {
      const row = await store.transaction((tx) => tx.append({ call_id: 'same', kind: 'event', agent: 'a', reason: 'people_reloaded', reason_message: 'caf\u00e9 \ud800', duration_ms: 3 }));
      // The value every store must give for this row (computed once, on SQLite, when this test was written).
      expect(row.hash).toBe(EXPECTED_SAME_HASH);
      // And as stored: the lone surrogate was made well-formed before it was hashed, not by the database after.
      expect(await store.verify()).toMatchObject({ ok: true, rows: 1 });
    } finally {
      await store.close();
    }
  });

  it('rolls a failed transaction back whole: no row, no reservation', async () => {
    const store = await (await adapter.create()).open();
    try {
      await expect(store.transaction(async (tx) => {
        const row = await tx.append({ call_id: 'gone', kind: 'decision', decision: 'allowed' });
        await tx.reserve({ callId: 'gone', agent: 'a', tool: 'refund', money: { minor: 500, currency: 'EUR' }, at: row.at });
        throw new Error('Mollie was not asked');
      })).rejects.toThrow('Mollie was not asked');
      expect(await store.head()).toEqual({ rows: 0, hash: '0'.repeat(64) });
      expect(await store.transaction((tx) => tx.reservedSince('a', 'refund', 'EUR', '2000-01-01T00:00:00.000Z'))).toEqual({ minor: 0, count: 0 });
    } finally {
      await store.close();
    }
  });

  it('sums a budget: released reservations give their money back, approved ones are not unapproved', async () => {
    const store = await (await adapter.create()).open();
    try {
      const at = '2026-12-01T10:00:00.000Z';
      await store.transaction(async (tx) => {
        await tx.reserve({ callId: 'r1', agent: 'a', tool: 'refund', money: { minor: 1000, currency: 'EUR' }, at });
        await tx.reserve({ callId: 'r2', agent: 'a', tool: 'refund', money: { minor: 250, currency: 'EUR' }, at, approved: true });
        await tx.reserve({ callId: 'r3', agent: 'a', tool: 'refund', money: { minor: 99, currency: 'EUR' }, at });
        await tx.reserve({ callId: 'r4', agent: 'a', tool: 'refund', money: { minor: 7, currency: 'USD' }, at });
        await tx.reserve({ callId: 'old', agent: 'a', tool: 'refund', money: { minor: 5000, currency: 'EUR' }, at: '2026-11-29T10:00:00.000Z' });
      });
      await store.transaction(async (tx) => {
        await tx.settle('r3', 'released');
        await tx.settle('r1', 'spent');
        // Settled once: a late "released" does not give back money that was spent.
        await tx.settle('r1', 'released');
      });
      const since = '2026-11-30T10:00:00.000Z';
      expect(await store.transaction((tx) => tx.reservedSince('a', 'refund', 'EUR', since))).toEqual({ minor: 1250, count: 2 });
      expect(await store.transaction((tx) => tx.unapprovedSince('a', 'refund', 'EUR', since))).toBe(1000);
    } finally {
      await store.close();
    }
  });

  it('three replicas racing 60 refunds against a daily cap stop exactly at it, on one unbroken chain', async () => {
    const shared = await adapter.create();
    const replicas = await Promise.all([shared.open(), shared.open(), shared.open()]);
    try {
      // 60 calls of 7.00 against 150.00 a day: 21 fit (147.00), the 22nd would make 154.00.
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => admit(replicas[i % 3]!, `call-${i}`, 700, 15_000)));
      expect(results.filter(Boolean)).toHaveLength(21);
      const used = await replicas[0]!.transaction((tx) => tx.reservedSince('refund-desk', 'refund', 'EUR', '2000-01-01T00:00:00.000Z'));
      expect(used).toEqual({ minor: 14_700, count: 21 });
      const verified = await replicas[1]!.verify();
      expect(verified).toMatchObject({ ok: true, rows: 60 });
      expect((await replicas[2]!.head()).rows).toBe(60);
    } finally {
      await Promise.all(replicas.map((replica) => replica.close()));
    }
  });
});

const EXPECTED_SAME_HASH = 'c049d2cbd69041e0a5813508927970629eaada24e10c35292eab46019f0892f4';
