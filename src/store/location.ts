/**
 * Where the commands find the store: a SQLite file's path, or the PostgreSQL store named by MOLLIE_MCP_DATABASE_URL.
 * Commands pass locations around as strings (most of them name a file); a PostgreSQL location is the URL, registered
 * here, and anything shown to a person goes through describeLocation, which never includes the password.
 */
import { existsSync } from 'node:fs';
import { openDatabase, type SqliteDatabase } from '../database.js';
import { UsageError } from '../commands/output.js';
import { VERSION } from '../version.js';
import type { DatabaseUrl } from './database-url.js';
import { PostgresDatabase } from './postgres/pg-database.js';

const postgres = new Map<string, DatabaseUrl>();

export function postgresLocation(database: DatabaseUrl): string {
  postgres.set(database.url, database);
  return database.url;
}

export function isPostgresLocation(location: string): boolean {
  return postgres.has(location);
}

/** The location as messages name it: the path, or user@host:port/database. */
export function describeLocation(location: string): string {
  return postgres.get(location)?.described ?? location;
}

/** Whether there is a store there to open: a file that exists, or any PostgreSQL location (its server says the rest). */
export function locationExists(location: string): boolean {
  return isPostgresLocation(location) || location === ':memory:' || existsSync(location);
}

/** Opens the store for a command. On PostgreSQL the schema must already be there: a command never creates it. */
export function openLocation(location: string): SqliteDatabase {
  const database = postgres.get(location);
  if (database === undefined) return openDatabase(location);
  const db = new PostgresDatabase(database, { appVersion: VERSION, migrate: false });
  const schema = db.prepare<[], { present: boolean }>("SELECT to_regclass('audit_log') IS NOT NULL AS present").get();
  if (schema?.present !== true) {
    db.close();
    throw new UsageError(`There is no audit log in ${database.described}: its schema was never created. Run \`mollie-invoice-mcp db migrate\` (or start a server on it), or check MOLLIE_MCP_DATABASE_URL.`, false);
  }
  return db as unknown as SqliteDatabase;
}
