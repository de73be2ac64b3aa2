/**
 * The secrets scan's recorder: test helpers note every secret they hand to a server (the Mollie key, agent tokens) and
 * every thing a server gives back (its log, tool results, HTTP answers, the database and files it leaves). The global
 * teardown (test/setup/secrets-scan.ts) then looks for each secret in everything recorded, across all test files.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openStoreForTest, storeTables } from './store-under-test.js';

const DIRECTORY = process.env.MIM_LEAK_DIR;

function write(file: string, record: unknown): void {
  if (!DIRECTORY) return;
  mkdirSync(DIRECTORY, { recursive: true });
  appendFileSync(join(DIRECTORY, `${file}-${process.pid}.jsonl`), `${JSON.stringify(record)}\n`);
}

/** A secret handed to a server under test: it must come back nowhere. */
export function secret(value: string): string {
  write('secrets', value);
  return value;
}

/** Something a server produced, to be scanned for secrets. */
export function produced(kind: string, text: string): void {
  if (text !== '') write('artifacts', { kind, text });
}

/** Everything a workspace holds before it is removed: every database row and every file the server wrote. */
export function producedWorkspace(dir: string, db: string, databaseUrl: string | null = null): void {
  if (!DIRECTORY) return;
  try {
    const handle = openStoreForTest({ db, databaseUrl });
    try {
      for (const { name, rows } of storeTables(handle, databaseUrl !== null)) produced(`database table ${name}`, JSON.stringify(rows));
    } finally {
      handle.close();
    }
  } catch {
    // No database (a test that never started a server).
  }
  const walk = (path: string): void => {
    for (const entry of readdirSync(path)) {
      const full = join(path, entry);
      const stat = statSync(full);
      if (stat.isDirectory()) walk(full);
      else if (stat.size < 20_000_000 && !/\.db(-wal|-shm)?$/.test(entry)) produced(`file ${entry}`, readFileSync(full, 'utf8'));
    }
  };
  walk(dir);
}
