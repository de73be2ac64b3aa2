/** The database file: indexes whose definition changed are rebuilt once when an older file is opened. */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../src/audit/audit-log.js';
import { listCalls } from '../src/audit/call-entries.js';
import { immediate, immediateWhenFree, openDatabase, writeIfFree } from '../src/database.js';

const directory = mkdtempSync(join(tmpdir(), 'mim-db-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const indexSql = (db: Database.Database, name: string): string | undefined =>
  (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(name) as { sql: string } | undefined)?.sql;

describe('opening a database written by 0.3.0', () => {
  it('rebuilds audit_agent for decision rows only, drops audit_decision_at and reservations_rate, and keeps every row', () => {
    const path = join(directory, 'old.db');
    const first = openDatabase(path);
    const log = new AuditLog(first);
    for (let i = 0; i < 4; i++) {
      log.append({ call_id: `c${i}`, kind: 'decision', agent: i % 2 ? 'a' : 'b', tool: 'get_payment_status', decision: 'allowed' });
      log.append({ call_id: `c${i}`, kind: 'outcome', outcome: 'ok' });
    }
    // The indexes as 0.3.0 defined them.
    first.exec(`DROP INDEX audit_agent; CREATE INDEX audit_agent ON audit_log (agent, kind, seq);
      CREATE INDEX audit_decision_at ON audit_log (kind, at);
      CREATE INDEX reservations_rate ON reservations (agent, reserved_at);`);
    first.close();

    const reopened = openDatabase(path);
    expect(indexSql(reopened, 'audit_agent')).toBe("CREATE INDEX audit_agent ON audit_log (agent, seq) WHERE kind = 'decision'");
    expect(indexSql(reopened, 'audit_decision_at')).toBeUndefined();
    expect(indexSql(reopened, 'reservations_rate')).toBeUndefined();
    expect(listCalls(reopened, { agent: 'a' }, 10).entries.map((entry) => entry.audit_id)).toEqual(['c3', 'c1']);
    expect(listCalls(reopened, { since: '2000-01-01T00:00:00.000Z' }, 10).entries).toHaveLength(4);
    expect(new AuditLog(reopened).verify()).toMatchObject({ ok: true, rows: 8 });
    reopened.close();
  });

  it('changes nothing in a file that is already current', () => {
    const path = join(directory, 'current.db');
    openDatabase(path).close();
    const version = (db: Database.Database): number => db.pragma('schema_version', { simple: true }) as number;
    const db = new Database(path);
    const before = version(db);
    db.close();
    const reopened = openDatabase(path);
    // Any DROP or CREATE would have moved the schema cookie.
    expect(version(reopened)).toBe(before);
    reopened.close();
  });
});

describe('durability of a transaction', () => {
  it('sets synchronous only when a transaction needs the other setting, and every full one runs at FULL', () => {
    const db = openDatabase(join(directory, 'durability.db'));
    const synchronous = (): number => db.pragma('synchronous', { simple: true }) as number;
    const NORMAL = 1;
    const FULL = 2;
    expect(synchronous()).toBe(FULL);
    immediate(db, () => db.prepare("INSERT INTO open_reads VALUES ('c1', 'i', 'now')").run(), 'normal');
    // A run of read-only calls stays at NORMAL; writes outside a transaction get the durability of the call.
    expect(synchronous()).toBe(NORMAL);
    immediate(db, () => db.prepare("DELETE FROM open_reads WHERE call_id = 'c1'").run(), 'normal');
    expect(synchronous()).toBe(NORMAL);
    immediate(db, () => db.prepare("INSERT INTO open_reads VALUES ('c2', 'i', 'now')").run());
    expect(synchronous()).toBe(FULL);
    // After a read-only one, a full transaction sets FULL again before it begins.
    immediate(db, () => undefined, 'normal');
    expect(synchronous()).toBe(NORMAL);
    immediate(db, () => db.prepare("DELETE FROM open_reads WHERE call_id = 'c2'").run());
    expect(synchronous()).toBe(FULL);
    db.close();
  });
});

describe('another process holding the write lock', () => {
  it('is waited for between short attempts, the event loop free meanwhile; the write lands once it is released', async () => {
    const path = join(directory, 'held.db');
    const db = openDatabase(path);
    const log = new AuditLog(db);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    // A heartbeat-like write is skipped, not waited for.
    expect(writeIfFree(db, () => log.append({ call_id: 'beat', kind: 'event' }))).toBe(false);

    const ticks: string[] = [];
    const write = immediateWhenFree(db, () => log.append({ call_id: 'w', kind: 'event' })).then(() => ticks.push('written'));
    for (let i = 0; i < 3; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      ticks.push('tick');
    }
    other.exec('COMMIT');
    other.close();
    await write;
    // With better-sqlite3's own wait, the write would have held the loop until the release: no tick before it.
    expect(ticks).toEqual(['tick', 'tick', 'tick', 'written']);
    expect((db.prepare("SELECT count(*) AS n FROM audit_log WHERE call_id = 'w'").get() as { n: number }).n).toBe(1);
    db.close();
  });

  it('gives up with SQLITE_BUSY after its deadline, having written nothing', async () => {
    const path = join(directory, 'held-long.db');
    const db = openDatabase(path);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    await expect(immediateWhenFree(db, () => new AuditLog(db).append({ call_id: 'x', kind: 'event' }), 'full', 200)).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    other.exec('ROLLBACK');
    other.close();
    expect((db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n).toBe(0);
    db.close();
  });
});

describe('servers starting together on a new file', () => {
  it('all open it: switching to WAL waits for the others instead of failing with "database is locked"', async () => {
    const { spawn } = await import('node:child_process');
    const directory = mkdtempSync(join(tmpdir(), 'mim-open-race-'));
    const module = new URL('../dist/src/database.js', import.meta.url).pathname;
    try {
      // Eight rounds of six processes released at the same millisecond; before the fix about one open in eight failed.
      const failures: string[] = [];
      for (let round = 0; round < 8; round++) {
        const file = join(directory, `race-${round}.db`);
        const at = Date.now() + 600;
        const script = `import(${JSON.stringify(module)}).then(({ openDatabase }) => { while (Date.now() < ${at}); try { openDatabase(${JSON.stringify(file)}).close(); console.log('ok'); } catch (e) { console.log('fail ' + e.message); } })`;
        const outputs = await Promise.all(Array.from({ length: 6 }, () => new Promise<string>((resolve) => {
          const child = spawn(process.execPath, ['-e', script]);
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          child.on('exit', () => resolve(out.trim()));
        })));
        failures.push(...outputs.filter((output) => output !== 'ok'));
      }
      expect(failures).toEqual([]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }, 60_000);
});
