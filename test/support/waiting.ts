/** Test helpers for what happens in another process: read its database, wait for something to become true. */
import Database from 'better-sqlite3';
import { openStoreForTest } from './store-under-test.js';

/** Rows from a server's SQLite file, read-only, while the server may still be writing it. */
export function queryFile<T>(file: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Rows of a query on the workspace's store, whichever it is (SQLite file or PostgreSQL database). */
export function queryStore<T>(workspace: { db: string; databaseUrl: string | null }, sql: string, ...params: unknown[]): T[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
