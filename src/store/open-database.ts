/**
 * The server's database connection for a configuration: the SQLite file (MOLLIE_MCP_DB, the default) or the shared
 * PostgreSQL store (MOLLIE_MCP_DATABASE_URL). Both answer the same calls (src/store/postgres/pg-database.ts), so
 * nothing past this point knows which one it has.
 */
import type { Config } from '../config.js';
import { openDatabase, type SqliteDatabase } from '../database.js';
import { VERSION } from '../version.js';
import { PostgresDatabase } from './postgres/pg-database.js';

export interface OpenedDatabase {
  db: SqliteDatabase;
  /** What messages call it: the file's path, or user@host:port/database (never the password). */
  name: string;
  kind: 'sqlite' | 'postgres';
}

export function openServerDatabase(config: Pick<Config, 'dbPath' | 'databaseUrl'>, options: { migrate?: boolean } = {}): OpenedDatabase {
  if (config.databaseUrl === null) return { db: openDatabase(config.dbPath), name: config.dbPath, kind: 'sqlite' };
  const db = new PostgresDatabase(config.databaseUrl, { appVersion: VERSION, migrate: options.migrate !== false });
  return { db: db as unknown as SqliteDatabase, name: config.databaseUrl.described, kind: 'postgres' };
}
