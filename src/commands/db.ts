/**
 * `db migrate` and `db copy`: the shared PostgreSQL store's schema, and moving an existing SQLite log into it with its
 * chain intact. `audit verify` and `audit export` on PostgreSQL are here too: they read through the storage port.
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import type pg from 'pg';
import { AUDIT_COLUMNS, type AuditRow } from '../audit/audit-log.js';
import { openForReading, type SqliteDatabase } from '../database.js';
import type { DatabaseUrl } from '../store/database-url.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { grantStatements, quoteIdentifier, SCHEMA_VERSION, schemaVersion } from '../store/postgres/schema.js';
import { VERSION } from '../version.js';
import { UsageError, type CommandOutput } from './output.js';

function needUrl(database: DatabaseUrl | null, command: string): DatabaseUrl {
  if (database === null) throw new UsageError(`${command} works on a PostgreSQL store: set MOLLIE_MCP_DATABASE_URL (or --database-url) to postgres://USER:PASSWORD@HOST:PORT/DATABASE.`, false);
  return database;
}

const ROLE_NAME = /^[a-z_][a-z0-9_$]{0,62}$/i;

export async function dbMigrate(database: DatabaseUrl | null, grantTo: string | undefined, io: CommandOutput): Promise<number> {
  const url = needUrl(database, 'db migrate');
  if (grantTo !== undefined && !ROLE_NAME.test(grantTo)) throw new UsageError(`--grant-to must be a PostgreSQL role name (letters, digits, _ and $, up to 63); got "${grantTo.slice(0, 80)}".`, false);
  const store = await PostgresStore.open(url, { appVersion: VERSION, migrate: false });
  try {
    const { from, to } = await store.withConnection(async (client) => {
      const { migrate } = await import('../store/postgres/schema.js');
      return migrate(client, VERSION);
    });
    io.out(from === to ? `Schema of ${url.described} is current (version ${to}).` : `Schema of ${url.described} migrated from version ${from} to ${to}.`);
    if (grantTo !== undefined) {
      const statements = grantStatements(grantTo);
      await store.withConnection(async (client) => {
        for (const statement of statements) await client.query(statement);
      });
      io.out(`Granted the server role ${grantTo} what it needs and no more:\n${statements.map((statement) => `  ${statement};`).join('\n')}`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

/** The tables `db copy` moves besides the log, in an order that keeps approvals before their votes. */
const TABLES = ['reservations', 'open_reads', 'payments', 'payment_links', 'invoice_locks', 'call_times', 'approvals', 'approval_votes'];
const BATCH_ROWS = 500;

function sqliteColumns(db: SqliteDatabase, table: string): string[] {
  return db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all().map((column) => column.name);
}

async function postgresColumns(client: pg.ClientBase, table: string): Promise<string[]> {
  const result = await client.query<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position", [table]);
  return result.rows.map((row) => row.column_name);
}

async function insertBatch(client: pg.ClientBase, table: string, columns: string[], rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const values: unknown[] = [];
  const tuples = rows.map((row) => `(${columns.map((column) => {
    values.push(row[column] ?? null);
    return `$${values.length}`;
  }).join(', ')})`);
  await client.query(`INSERT INTO ${quoteIdentifier(table)} (${columns.map(quoteIdentifier).join(', ')}) VALUES ${tuples.join(', ')}`, values);
}

/**
 * Copies a SQLite store into an empty PostgreSQL one, in one transaction: the log row by row through the same
 * triggers that guard every append (so the copy is a chain, or nothing), then the budgets, payments, links, invoice
 * locks, approvals and votes, and the database id signed checkpoints name. The source is read in one snapshot, and
 * must verify first: a broken log is reported, not carried over.
 */
export async function dbCopy(from: string | undefined, to: DatabaseUrl | null, io: CommandOutput): Promise<number> {
  if (from === undefined) throw new UsageError('db copy needs --from FILE, the SQLite database to copy.');
  const target = needUrl(to, 'db copy');
  if (!existsSync(from)) throw new UsageError(`There is no database at ${from}.`, false);
  const source = openForReading(from);
  try {
    const { verifyChain } = await import('../audit/audit-log.js');
    source.exec('BEGIN');
    const checked = verifyChain(source);
    if (!checked.ok) {
      io.out(`Not copied: the audit log in ${from} is BROKEN at row ${checked.firstBad.seq}: ${checked.firstBad.problem}. Run \`audit verify --db ${from}\` and keep that file as evidence.`);
      return 1;
    }
    const store = await PostgresStore.open(target, { appVersion: VERSION });
    try {
      const counts = await store.withConnection(async (client) => {
        await client.query('BEGIN');
        try {
          // No server appends while the log moves in, and the target must hold nothing yet.
          const head = await client.query<{ seq: number }>('SELECT seq FROM audit_chain_head FOR UPDATE');
          const busy: string[] = [];
          if ((head.rows[0]?.seq ?? 0) > 0) busy.push(`${head.rows[0]!.seq} audit rows`);
          for (const table of TABLES) {
            const n = (await client.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${quoteIdentifier(table)}`)).rows[0]!.n;
            if (n > 0) busy.push(`${n} rows in ${table}`);
          }
          if (busy.length > 0) throw new UsageError(`Not copied: ${target.described} is not empty (${busy.join(', ')}). Copy into a new database: createdb, then \`db copy\` again.`, false);
          const copied: Record<string, number> = {};
          let rows: Record<string, unknown>[] = [];
          let n = 0;
          for (const row of source.prepare<[], AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ORDER BY seq`).iterate()) {
            rows.push(row as unknown as Record<string, unknown>);
            if (rows.length === BATCH_ROWS) {
              await insertBatch(client, 'audit_log', [...AUDIT_COLUMNS], rows);
              n += rows.length;
              rows = [];
            }
          }
          await insertBatch(client, 'audit_log', [...AUDIT_COLUMNS], rows);
          copied.audit_log = n + rows.length;
          for (const table of TABLES) {
            const present = new Set(await postgresColumns(client, table));
            const columns = sqliteColumns(source, table).filter((column) => present.has(column));
            let batch: Record<string, unknown>[] = [];
            let count = 0;
            if (columns.length > 0) {
              // In the order they were written: PostgreSQL numbers them again (rowid) in that order.
              const order = present.has('rowid') ? ' ORDER BY rowid' : '';
              for (const row of source.prepare<[], Record<string, unknown>>(`SELECT ${columns.join(', ')} FROM ${table}${order}`).iterate()) {
                batch.push(row);
                if (batch.length === BATCH_ROWS) {
                  await insertBatch(client, table, columns, batch);
                  count += batch.length;
                  batch = [];
                }
              }
              await insertBatch(client, table, columns, batch);
            }
            copied[table] = count + batch.length;
          }
          const id = source.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'database_id'").get();
          if (id) await client.query("UPDATE store_meta SET value = $1 WHERE key = 'database_id'", [id.value]);
          await client.query('COMMIT');
          return copied;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
      const after = await store.verify();
      if (!after.ok || after.lastHash !== checked.lastHash) {
        io.out(`Copied, but the copy does NOT verify${after.ok ? `: its last hash ${after.lastHash} differs from ${checked.lastHash}` : ` at row ${after.firstBad.seq}: ${after.firstBad.problem}`}.`);
        return 1;
      }
      io.out(`Copied ${from} into ${target.described}: ${Object.entries(counts).map(([table, n]) => `${n} ${table}`).join(', ')}.`);
      io.out(`Audit log intact on both: ${after.rows} rows, the same last hash ${after.lastHash}.`);
      return 0;
    } finally {
      await store.close();
    }
  } finally {
    if (source.inTransaction) source.exec('COMMIT');
    source.close();
  }
}

/** `audit export` on PostgreSQL. */
export async function auditExportShared(database: DatabaseUrl, options: { format: string | undefined; out?: string | undefined }, io: CommandOutput, csvCell: (value: unknown) => string): Promise<number> {
  if (options.format !== 'jsonl' && options.format !== 'csv') throw new UsageError('--format must be jsonl or csv.');
  const store = await openToRead(database, io);
  const fd = options.out !== undefined ? openSync(options.out, 'w', 0o600) : null;
  const write = (line: string): void => {
    if (fd === null) io.out(line);
    else writeSync(fd, `${line}\n`);
  };
  let count = 0;
  try {
    if (options.format === 'csv') write(AUDIT_COLUMNS.join(','));
    for await (const row of store.rows()) {
      write(options.format === 'jsonl' ? JSON.stringify(row) : AUDIT_COLUMNS.map((column) => csvCell(row[column as keyof AuditRow])).join(','));
      count += 1;
    }
  } finally {
    if (fd !== null) closeSync(fd);
    await store.close();
  }
  if (options.out !== undefined) io.err(`Exported ${count} audit rows to ${options.out}.`);
  return 0;
}

/** An auditor's connection: migrates nothing (an auditor's role may only read), and says which database it read. */
async function openToRead(database: DatabaseUrl, io: CommandOutput): Promise<PostgresStore> {
  const store = await PostgresStore.open(database, { appVersion: VERSION, migrate: false, poolSize: 2 });
  const version = await store.withConnection((client) => schemaVersion(client));
  if (version === 0) {
    await store.close();
    throw new UsageError(`There is no audit log in ${database.described}: its schema was never created. Run \`mollie-invoice-mcp db migrate\`, or check MOLLIE_MCP_DATABASE_URL.`, false);
  }
  if (version > SCHEMA_VERSION) io.err(`The schema of ${database.described} is at version ${version}, newer than this version's ${SCHEMA_VERSION}; reading it as far as this version knows it.`);
  io.err(`Database: ${database.described}`);
  return store;
}
