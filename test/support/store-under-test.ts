/**
 * Which store the end-to-end suites run their servers on: the SQLite file of the workspace (the default), or, with
 * MIM_TEST_STORE=postgres, a database of its own on the run's PostgreSQL cluster (test/setup/postgres.ts). Tests read
 * what a server wrote through openStoreForTest, which answers the same calls on either.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { parseDatabaseUrl } from '../../src/store/database-url.js';
import { PostgresDatabase } from '../../src/store/postgres/pg-database.js';
import { secret } from './leak-watch.js';

export const ON_POSTGRES = process.env.MIM_TEST_STORE === 'postgres';

function psql(url: string, sql: string): void {
  execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new empty database for one workspace; its schema is made by the first server that opens it. */
export function createStoreDatabase(): string {
  const admin = inject('postgresAdminUrl');
  // The cluster's password is in every URL a server is given: it must come back in nothing a server produces.
  secret(decodeURIComponent(new URL(admin).password));
  const name = `mim_ws_${randomBytes(6).toString('hex')}`;
  psql(admin, `CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

export function dropStoreDatabase(url: string): void {
  const admin = inject('postgresAdminUrl');
  const name = new URL(url).pathname.slice(1);
  try {
    psql(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } catch {
    // The cluster is removed after the run anyway.
  }
}

/** The workspace's store, to read what a server wrote: better-sqlite3 on the file, or the PostgreSQL adapter. */
export function openStoreForTest(workspace: { db: string; databaseUrl: string | null }, options: { readonly?: boolean } = {}): Database.Database {
  if (workspace.databaseUrl !== null) {
    return new PostgresDatabase(parseDatabaseUrl(workspace.databaseUrl), { appVersion: 'test', migrate: false }) as unknown as Database.Database;
  }
  return new Database(workspace.db, { readonly: options.readonly !== false, fileMustExist: true });
}

/** Every table's rows, for the secrets scan. */
export function storeTables(db: Database.Database, postgres: boolean): { name: string; rows: unknown[] }[] {
  const names = postgres
    ? db.prepare<[], { name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'").all()
    : db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
  return names.map(({ name }) => ({ name, rows: db.prepare(`SELECT * FROM "${name}"`).all() }));
}

/** The variable that names the workspace's store, for a command run by a test. */
export function storeEnv(workspace: { db: string; databaseUrl: string | null }): Record<string, string> {
  return workspace.databaseUrl !== null ? { MOLLIE_MCP_DATABASE_URL: workspace.databaseUrl } : { MOLLIE_MCP_DB: workspace.db };
}

/** The flag that names the workspace's store, for a command run by a test. */
export function storeArgs(workspace: { db: string; databaseUrl: string | null }): string[] {
  return workspace.databaseUrl !== null ? ['--database-url', workspace.databaseUrl] : ['--db', workspace.db];
}

/** The workspace's store as the server's messages name it: the file's path, or user@host:port/database. */
export function storeName(workspace: { db: string; databaseUrl: string | null }): string {
  return workspace.databaseUrl !== null ? parseDatabaseUrl(workspace.databaseUrl).described : workspace.db;
}
