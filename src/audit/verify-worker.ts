/** One range of `audit verify`, in a worker thread with its own read-only connection. */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { verifyChain } from './audit-log.js';
import type { RangeJob } from './verify-parallel.js';

const job = workerData as RangeJob;
const db = new Database(job.path, { readonly: true, fileMustExist: true });
try {
  // The row before the range: its stored hash is what this range's first prev_hash must be; the range before checks it.
  const before = job.fromSeq === 1 ? undefined : db.prepare<[number], { hash: string }>('SELECT hash FROM audit_log WHERE seq = ?').get(job.fromSeq - 1);
  const expectedPrev = job.fromSeq === 1 ? undefined : (before?.hash ?? '');
  parentPort!.postMessage(verifyChain(db, job.fromSeq, expectedPrev, job.rows ?? Number.POSITIVE_INFINITY));
} finally {
  db.close();
}
