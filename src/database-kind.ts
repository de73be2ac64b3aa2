/**
 * Which Mollie a database's records belong to: the offline simulator's or a real account's. Simulated payments in a
 * real database would mix with real records, count against the agents' real budgets and sit in the real audit chain,
 * so a database is marked by the first server that writes to it, and the other kind is refused with a message.
 */
import { existsSync } from 'node:fs';
import { ConfigError } from './config.js';
import { defaultDatabasePath, immediate, openForReading, type SqliteDatabase } from './database.js';

export type DatabaseKind = 'simulator' | 'mollie';

/** A ConfigError: the CLI says it as a setting to change, not as an unexpected failure. */
export class DatabaseKindError extends ConfigError {}

const KEY = 'mollie_kind';

function readKind(db: SqliteDatabase): DatabaseKind | null {
  const row = db.prepare('SELECT value FROM store_meta WHERE key = ?').get(KEY) as { value: string } | undefined;
  return row?.value === 'simulator' || row?.value === 'mollie' ? row.value : null;
}

export function mismatch(path: string, kind: DatabaseKind, env: Readonly<Record<string, string | undefined>>): string {
  return kind === 'simulator'
    ? `${path} holds the records of a real Mollie account; the simulator does not write into it (its payments would mix with real ones, count against the agents' budgets and enter the real audit chain). Give the simulator its own database with --db FILE or MOLLIE_MCP_DB, or leave both out: its default is ${defaultDatabasePath(env, true)}.`
    : `${path} is a simulator database; the records of a real Mollie account do not go into it. Point MOLLIE_MCP_DB (or --db) at another file, or leave it out: the default is ${defaultDatabasePath(env, false)}.`;
}

/** Marks an unmarked database as `kind`; refuses one marked as the other kind. */
export function claimDatabase(db: SqliteDatabase, path: string, kind: DatabaseKind, env: Readonly<Record<string, string | undefined>>): void {
  // A marked file is only read: no write transaction at every start.
  const marked = readKind(db) ?? immediate(db, () => {
    const found = readKind(db);
    if (found === null) db.prepare('INSERT INTO store_meta (key, value) VALUES (?, ?)').run(KEY, kind);
    return found ?? kind;
  });
  if (marked !== kind) throw new DatabaseKindError(mismatch(path, kind, env));
}

/** The kind an existing file is marked with, read without writing; null for a missing or unmarked file. */
export function kindOfFile(path: string): DatabaseKind | null {
  if (path === ':memory:' || !existsSync(path)) return null;
  const db = openForReading(path);
  try {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store_meta'").get() !== undefined;
    return hasMeta ? readKind(db) : null;
  } finally {
    db.close();
  }
}
