/**
 * `db migrate` and `db copy`: the shared PostgreSQL store's schema, and moving an existing SQLite log into it with its
 * chain intact. Both talk to PostgreSQL through the server's own connection adapter (src/store/postgres/).
 */
import { existsSync } from 'node:fs';
import { AUDIT_COLUMNS, verifyChain } from '../audit/audit-log.js';
import { openForReading, type SqliteDatabase } from '../database.js';
import type { DatabaseUrl } from '../store/database-url.js';
import { PostgresDatabase } from '../store/postgres/pg-database.js';
import { grantStatements, quoteIdentifier, SCHEMA_VERSION } from '../store/postgres/schema.js';
import { VERSION } from '../version.js';
import { UsageError, type CommandOutput } from './output.js';

function needUrl(database: DatabaseUrl | null, command: string): DatabaseUrl {
  if (database === null) throw new UsageError(`${command} works on a PostgreSQL store: set MOLLIE_MCP_DATABASE_URL (or --database-url) to postgres://USER:PASSWORD@HOST:PORT/DATABASE.`, false);
  return database;
}

const ROLE_NAME = /^[a-z_][a-z0-9_$]{0,62}$/i;

function versionOf(db: PostgresDatabase): number {
  const present = db.prepare<[], { present: boolean }>("SELECT to_regclass('schema_version') IS NOT NULL AS present").get()?.present === true;
  return present ? (db.prepare<[], { version: number | null }>('SELECT max(version) AS version FROM schema_version').get()?.version ?? 0) : 0;
}

export function dbMigrate(database: DatabaseUrl | null, grantTo: string | undefined, io: CommandOutput): number {
  const url = needUrl(database, 'db migrate');
  if (grantTo !== undefined && !ROLE_NAME.test(grantTo)) throw new UsageError(`--grant-to must be a PostgreSQL role name (letters, digits, _ and $, up to 63); got "${grantTo.slice(0, 80)}".`, false);
  const before = new PostgresDatabase(url, { appVersion: VERSION, migrate: false });
  let from: number;
  try {
    from = versionOf(before);
  } finally {
    before.close();
  }
  // Migrated as the connection opens, under the migration lock.
  const db = new PostgresDatabase(url, { appVersion: VERSION });
  try {
    io.out(from === SCHEMA_VERSION ? `Schema of ${url.described} is current (version ${SCHEMA_VERSION}).` : `Schema of ${url.described} migrated from version ${from} to ${SCHEMA_VERSION}.`);
    if (grantTo !== undefined) {
      const statements = grantStatements(grantTo);
      for (const statement of statements) db.exec(statement);
      io.out(`Granted the server role ${grantTo} what it needs and no more:\n${statements.map((statement) => `  ${statement};`).join('\n')}`);
    }
    return 0;
  } finally {
    db.close();
  }
}

/** The tables `db copy` moves besides the log, in an order that keeps approvals before their votes. */
const TABLES = ['reservations', 'open_reads', 'payments', 'payment_links', 'invoice_locks', 'call_times', 'approvals', 'approval_votes', 'client_confirmations'];
const BATCH_ROWS = 500;

function columnsOf(db: SqliteDatabase | PostgresDatabase, table: string): string[] {
  return (db.pragma(`table_info(${table})`) as { name: string }[]).map((column) => column.name);
}

function insertBatch(db: PostgresDatabase, table: string, columns: string[], rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const values = rows.flatMap((row) => columns.map((column) => row[column] ?? null));
  db.prepare(`INSERT INTO ${quoteIdentifier(table)} (${columns.map(quoteIdentifier).join(', ')}) VALUES ${rows.map(() => tuple).join(', ')}`).run(...values);
}

function copyRows(source: SqliteDatabase, target: PostgresDatabase, table: string, columns: string[], select: string): number {
  let batch: Record<string, unknown>[] = [];
  let count = 0;
  for (const row of source.prepare<[], Record<string, unknown>>(select).iterate()) {
    batch.push(row);
    if (batch.length === BATCH_ROWS) {
      insertBatch(target, table, columns, batch);
      count += batch.length;
      batch = [];
    }
  }
  insertBatch(target, table, columns, batch);
  return count + batch.length;
}

/**
 * Copies a SQLite store into an empty PostgreSQL one, in one transaction that holds the store's write lock: the log
 * row by row through the same triggers that guard every append (so the copy is a chain, or nothing), then the
 * budgets, payments, links, invoice locks, approvals and votes, and the store's facts (its id, which signed checkpoints
 * name; its kind, real account or simulator; whether named people approve on it). The
 * source is read in one snapshot and must verify first: a broken log is reported, not carried over.
 */
export function dbCopy(from: string | undefined, to: DatabaseUrl | null, io: CommandOutput): number {
  if (from === undefined) throw new UsageError('db copy needs --from FILE, the SQLite database to copy.');
  const target = needUrl(to, 'db copy');
  if (!existsSync(from)) throw new UsageError(`There is no database at ${from}.`, false);
  const source = openForReading(from);
  try {
    source.exec('BEGIN');
    const checked = verifyChain(source);
    if (!checked.ok) {
      io.out(`Not copied: the audit log in ${from} is BROKEN at row ${checked.firstBad.seq}: ${checked.firstBad.problem}. Run \`audit verify --db ${from}\` and keep that file as evidence.`);
      return 1;
    }
    const db = new PostgresDatabase(target, { appVersion: VERSION });
    try {
      db.exec('BEGIN IMMEDIATE');
      const copied: Record<string, number> = {};
      try {
        const busy: string[] = [];
        const head = db.prepare<[], { seq: number }>('SELECT seq FROM audit_chain_head').get()?.seq ?? 0;
        if (head > 0) busy.push(`${head} audit rows`);
        for (const table of TABLES) {
          const n = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${quoteIdentifier(table)}`).get()?.n ?? 0;
          if (n > 0) busy.push(`${n} rows in ${table}`);
        }
        if (busy.length > 0) throw new UsageError(`Not copied: ${target.described} is not empty (${busy.join(', ')}). Copy into a new database: createdb, then \`db copy\` again.`, false);
        copied.audit_log = copyRows(source, db, 'audit_log', [...AUDIT_COLUMNS], `SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ORDER BY seq`);
        for (const table of TABLES) {
          const present = new Set(columnsOf(db, table));
          const columns = columnsOf(source, table).filter((column) => present.has(column));
          // In the order they were written: PostgreSQL numbers them again (rowid) in that order.
          const order = present.has('rowid') ? ' ORDER BY rowid' : '';
          copied[table] = columns.length === 0 ? 0 : copyRows(source, db, table, columns, `SELECT ${columns.join(', ')} FROM ${table}${order}`);
        }
        // The store's facts too: its id (which signed checkpoints name), whether its records are a real account's or the
        // simulator's, and whether named people approve on it. Without the last two a server would start where it must not.
        const upsert = db.prepare('INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
        for (const { key, value } of source.prepare<[], { key: string; value: string }>('SELECT key, value FROM store_meta').all()) upsert.run(key, value);
        db.exec('COMMIT');
        // Statistics for the planner at once: until autovacuum gets to it, a freshly filled table is planned as empty.
        db.exec('ANALYZE');
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
      const after = verifyChain(db as unknown as SqliteDatabase);
      if (!after.ok || after.lastHash !== checked.lastHash) {
        io.out(`Copied, but the copy does NOT verify${after.ok ? `: its last hash ${after.lastHash} differs from ${checked.lastHash}` : ` at row ${after.firstBad.seq}: ${after.firstBad.problem}`}.`);
        return 1;
      }
      io.out(`Copied ${from} into ${target.described}: ${Object.entries(copied).map(([table, n]) => `${n} ${table}`).join(', ')}.`);
      io.out(`Audit log intact on both: ${after.rows} rows, the same last hash ${after.lastHash}.`);
      return 0;
    } finally {
      db.close();
    }
  } finally {
    if (source.inTransaction) source.exec('COMMIT');
    source.close();
  }
}
