/**
 * `audit verify` on a large log: the chain is cut into contiguous seq ranges, one worker thread each. Every row keeps
 * its own prev_hash, so a range can be checked alone once its first row is tied to the stored hash of the row before
 * it, which the previous range checks. The first bad row is the one with the lowest seq among the ranges' reports, so
 * the answer is the one a single pass gives.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { isPostgres, type SqliteDatabase } from '../database.js';
import { packagePath } from '../package-root.js';
import { verifyChain, type VerifyResult } from './audit-log.js';

export interface RangeJob {
  path: string;
  fromSeq: number;
  /** null: to the end of the log. */
  rows: number | null;
}

/** Below this many rows per worker, starting threads costs more than it saves. */
const MIN_ROWS_PER_WORKER = 100_000;
const MAX_WORKERS = 8;
/** The most `audit verify --threads` accepts. */
export const MAX_THREADS = 64;

/** As tsc builds it: the bundled CLI runs this code from a chunk elsewhere, and the worker stays where it is. */
const WORKER = packagePath('dist/src/audit/verify-worker.js');

function verifyRange(job: RangeJob): Promise<VerifyResult> {
  return new Promise((resolve, reject) => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing from this installation; reinstall mollie-invoice-mcp.`);
    const worker = new Worker(WORKER, { workerData: job });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the verify worker for rows from ${job.fromSeq} stopped with code ${code}`));
    });
  });
}

/**
 * `threads`: how many ranges to check at once; by default one per core, and only for logs of at least 100,000 rows per
 * thread. Given explicitly, that many are used for any log with at least one row per thread.
 */
export async function verifyLog(db: SqliteDatabase, path: string, options: { threads?: number } = {}): Promise<VerifyResult> {
  const last = db.prepare<[], { last: number | null }>('SELECT max(seq) AS last FROM audit_log').get()?.last ?? 0;
  const workers =
    options.threads !== undefined
      ? Math.min(options.threads, last)
      : Math.min(availableParallelism(), MAX_WORKERS, Math.floor(last / MIN_ROWS_PER_WORKER));
  // On PostgreSQL the server's own database does the reading; one pass, page by page.
  if (workers < 2 || path === ':memory:' || isPostgres(db)) return verifyChain(db);
  const size = Math.ceil(last / workers);
  // The workers open the file the way the command did (by path, or as an immutable URI for a read-only folder).
  const name = db.name;
  const jobs: RangeJob[] = Array.from({ length: workers }, (_, i) => ({ path: name, fromSeq: 1 + i * size, rows: i === workers - 1 ? null : size }));
  const results = await Promise.all(jobs.map(verifyRange));
  let rows = 0;
  for (const [i, result] of results.entries()) {
    const job = jobs[i]!;
    if (!result.ok) return { ok: false, rows: job.fromSeq - 1 + result.rows, firstBad: result.firstBad };
    if (job.rows !== null && result.rows < job.rows) {
      const missing = job.fromSeq + result.rows;
      return { ok: false, rows: missing - 1, firstBad: { seq: missing, call_id: null, problem: `row ${missing} is missing: the log ends before it` } };
    }
    rows += result.rows;
  }
  return { ok: true, rows, lastHash: (results.at(-1) as Extract<VerifyResult, { ok: true }>).lastHash };
}
