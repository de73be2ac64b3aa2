/**
 * Databases for one test file on the run's PostgreSQL cluster (test/setup/postgres.ts): each a fresh database owned
 * by a fresh owner role, with a second role for the server that owns nothing and has the README's grants.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { grantStatements, migrate } from '../../src/store/postgres/schema.js';
import { secret as recordSecret } from './leak-watch.js';

export interface TestDatabase {
  name: string;
  /** The owner's URL: creates and migrates the schema. */
  ownerUrl: string;
  /** The server role's URL: owns nothing, has the grants of grantStatements. */
  serverUrl: string;
  serverRole: string;
  serverPassword: string;
  /** Runs SQL as the cluster's superuser on this database. */
  admin<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<T>>;
}

export function adminUrl(): string {
  return inject('postgresAdminUrl');
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function withUser(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
}

export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult<T>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<T>(sql, values);
  } finally {
    await client.end();
  }
}

/**
 * A new database. `migrated`: its schema created by the owner and the server role granted what it needs, as the
 * README's setup does; otherwise empty, with the server role given the right to create tables in it (a one-role setup).
 */
export async function freshDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const admin = adminUrl();
  const suffix = randomBytes(5).toString('hex');
  const name = `mim_${suffix}`;
  const owner = `mim_owner_${suffix}`;
  const server = `mim_server_${suffix}`;
  const ownerPassword = randomBytes(12).toString('hex');
  const serverPassword = `S${randomBytes(12).toString('hex')}`;
  recordSecret(ownerPassword);
  recordSecret(serverPassword);
  await adminQuery(admin, `CREATE ROLE ${owner} LOGIN PASSWORD '${ownerPassword}'`);
  await adminQuery(admin, `CREATE ROLE ${server} LOGIN PASSWORD '${serverPassword}'`);
  await adminQuery(admin, `CREATE DATABASE ${name} OWNER ${owner}`);
  const databaseAdmin = withDatabase(admin, name);
  // PostgreSQL 15 lets only the database's owner create in its public schema.
  await adminQuery(databaseAdmin, `ALTER SCHEMA public OWNER TO ${owner}`);
  const ownerUrl = withUser(withDatabase(admin, name), owner, ownerPassword);
  const serverUrl = withUser(withDatabase(admin, name), server, serverPassword);
  if (options.migrated !== false) {
    const client = new pg.Client({ connectionString: ownerUrl });
    await client.connect();
    try {
      await migrate(client, 'test');
      for (const statement of grantStatements(server)) await client.query(statement);
    } finally {
      await client.end();
    }
  }
  return {
    name,
    ownerUrl,
    serverUrl,
    serverRole: server,
    serverPassword,
    admin: (sql, values) => adminQuery(databaseAdmin, sql, values),
  };
}

