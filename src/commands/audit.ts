/** `audit list`, `audit export`, `audit verify` and `audit story`: the log for people, for other tools, and for trust. */
import { existsSync, openSync, writeSync, closeSync } from 'node:fs';
import { AUDIT_COLUMNS, AuditLog, type AuditRow } from '../audit/audit-log.js';
import { listCalls } from '../audit/call-entries.js';
import { formatCallTable } from '../audit/call-table.js';
import { quoted } from '../audit/printable.js';
import { buildStory, isStoryId, storyLines } from '../audit/story.js';
import { checkBudgets } from '../audit/budget-check.js';
import { MAX_THREADS, verifyLog } from '../audit/verify-parallel.js';
import { defaultDatabasePath, openDatabase, openForReading, type SqliteDatabase } from '../database.js';
import { describeLocation, isPostgresLocation, openLocation } from '../store/location.js';
import { shellQuote } from './command-line.js';
import { UsageError, type CommandOutput } from './output.js';

/** No database at `path`: say so, and name the simulator's default file when that is the one that exists. */
export function noDatabase(path: string): UsageError {
  const simulator = defaultDatabasePath(process.env, true);
  const hint = path !== simulator && existsSync(simulator) ? ` Only the simulator's database exists: add --db ${shellQuote(simulator)} to read that one.` : ' Set MOLLIE_MCP_DB (or --db) to the file the server writes.';
  return new UsageError(`There is no audit log at ${path}.${hint}`, false);
}

export function openExisting(path: string): SqliteDatabase {
  if (isPostgresLocation(path)) return openLocation(path);
  if (path !== ':memory:' && !existsSync(path)) throw noDatabase(path);
  return openDatabase(path);
}

/**
 * For the commands that only read the log: a file only the server's user may write can still be audited. Which file
 * was read goes to stderr, so an empty answer from the wrong database is not mistaken for an empty log.
 */
function openToRead(path: string, io: CommandOutput): SqliteDatabase {
  if (isPostgresLocation(path)) {
    const db = openLocation(path);
    io.err(`Database: ${describeLocation(path)}`);
    return db;
  }
  if (path !== ':memory:' && !existsSync(path)) throw noDatabase(path);
  const db = openForReading(path);
  io.err(`Database: ${path}`);
  return db;
}

export function auditList(
  dbPath: string,
  filter: {
    agent?: string | undefined;
    tool?: string | undefined;
    since?: string | undefined;
    limit?: string | undefined;
    payment?: string | undefined;
    invoice?: string | undefined;
  },
  io: CommandOutput,
): number {
  if (filter.payment !== undefined && !PAYMENT_OR_LINK.test(filter.payment)) {
    throw new UsageError(`--payment must be a payment id (tr_ followed by letters and digits) or a payment link id (pl_...); got ${quoted(filter.payment)}.`);
  }
  if (filter.invoice !== undefined && !INVOICE.test(filter.invoice)) {
    throw new UsageError(`--invoice must be an invoice id: 1-64 letters, digits, ".", "_", "/" or "-"; got ${quoted(filter.invoice)}.`);
  }
  let since: string | undefined;
  if (filter.since !== undefined) {
    const time = Date.parse(filter.since);
    if (Number.isNaN(time)) throw new UsageError(`--since must be an ISO 8601 time such as 2026-11-21T09:00:00Z; got "${filter.since}".`);
    since = new Date(time).toISOString();
  }
  const limit = filter.limit === undefined ? 20 : Number(filter.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit must be a whole number from 1 to 10000; got "${filter.limit}".`);
  const db = openToRead(dbPath, io);
  try {
    const { entries } = listCalls(db, { agent: filter.agent, tool: filter.tool, since, paymentId: filter.payment, invoiceId: filter.invoice }, limit);
    if (entries.length === 0) {
      io.out('No calls recorded that match.');
      return 0;
    }
    for (const line of formatCallTable([...entries].reverse())) io.out(line);
    return 0;
  } finally {
    db.close();
  }
}

const PAYMENT_OR_LINK = /^(tr|pl)_[A-Za-z0-9]{1,64}$/;
const INVOICE = /^[A-Za-z0-9._/-]{1,64}$/;
const STORY_IDS = 'a payment id (tr_...), a payment link id (pl_...) or an invoice id (1-64 letters, digits, ".", "_", "/" or "-")';

/**
 * `audit story <id>`: every call, webhook and approval about a payment, a payment link or an invoice, in order. Exit 1
 * when nothing in the database mentions the id.
 */
export function auditStory(dbPath: string, id: string | undefined, io: CommandOutput): number {
  if (id === undefined || id === '') throw new UsageError(`audit story needs ${STORY_IDS}.`);
  if (!isStoryId(id)) throw new UsageError(`audit story needs ${STORY_IDS}; got ${quoted(id)}.`);
  const db = openToRead(dbPath, io);
  try {
    const story = buildStory(db, id);
    if (story === null) {
      io.err(`Nothing in this database mentions ${quoted(id)}: no audit row, payment or payment link. Check the id, or name the server's database with --db.`);
      return 1;
    }
    for (const line of storyLines(story)) io.out(line);
    return 0;
  } finally {
    db.close();
  }
}

export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  // A leading = + - @ would be run as a formula by spreadsheet programs; a quote mark keeps it text.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function auditExport(dbPath: string, options: { format: string | undefined; out?: string | undefined }, io: CommandOutput): number {
  if (options.format !== 'jsonl' && options.format !== 'csv') throw new UsageError('--format must be jsonl or csv.');
  const db = openToRead(dbPath, io);
  const fd = options.out !== undefined ? openSync(options.out, 'w', 0o600) : null;
  const write = (line: string): void => {
    if (fd === null) io.out(line);
    else writeSync(fd, `${line}\n`);
  };
  let count = 0;
  try {
    if (options.format === 'csv') write(AUDIT_COLUMNS.join(','));
    for (const row of new AuditLog(db).rows()) {
      write(options.format === 'jsonl' ? JSON.stringify(row) : AUDIT_COLUMNS.map((column) => csvCell(row[column as keyof AuditRow])).join(','));
      count += 1;
    }
  } finally {
    if (fd !== null) closeSync(fd);
    db.close();
  }
  if (options.out !== undefined) io.err(`Exported ${count} audit rows to ${options.out}.`);
  return 0;
}

export async function auditVerify(dbPath: string, threadsFlag: string | undefined, io: CommandOutput, checkpoints?: { directory: string; publicKey: string }): Promise<number> {
  const threads = threadsFlag === undefined ? undefined : Number(threadsFlag);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    throw new UsageError(`--threads must be a whole number from 1 to ${MAX_THREADS}; got "${threadsFlag}".`);
  }
  const db = openToRead(dbPath, io);
  try {
    const result = await verifyLog(db, dbPath, threads === undefined ? {} : { threads });
    if (result.ok) {
      io.out(`Audit log intact: ${result.rows} rows, hash chain verified (last hash ${result.lastHash}).`);
      const budgets = checkBudgets(db);
      if (!budgets.ok) {
        io.out(`Budgets DO NOT MATCH the log at call ${budgets.callId}${budgets.seq > 0 ? ` (row ${budgets.seq})` : ''}: ${budgets.problem}. The reservations table was changed outside the server.`);
        return 1;
      }
      io.out(`Budgets match the log: the reservations of ${budgets.calls} money-moving call(s) are what their rows say.`);
      if (checkpoints === undefined) return 0;
      const { CheckpointKeyError, loadVerifyingKey, verifyCheckpoints } = await import('../audit/checkpoints.js');
      let key;
      try {
        key = loadVerifyingKey(checkpoints.publicKey);
      } catch (error) {
        if (error instanceof CheckpointKeyError) throw new UsageError(error.message);
        throw error;
      }
      const checked = verifyCheckpoints(db, checkpoints.directory, key);
      if (!checked.ok) {
        io.out(`Checkpoint FAILED at ${checked.where}: ${checked.problem}. ${checked.checked} checkpoint(s) before it held.`);
        return 1;
      }
      io.out(
        checked.checked === 0
          ? `No checkpoints in ${checkpoints.directory}: nothing shows whether rows were cut off the end.`
          : `Checkpoints hold: ${checked.checked} signed checkpoint(s) by key ${key.keyId}, the latest at row ${checked.latest!.seq} (${checked.latest!.at}); the log reaches each with the same hash.`,
      );
      return checked.checked === 0 ? 1 : 0;
    }
    const bad = result.firstBad;
    io.out(`Audit log BROKEN at row ${bad.seq}${bad.call_id ? ` (call ${bad.call_id})` : ''}: ${bad.problem}. ${result.rows} rows before it verified.`);
    return 1;
  } finally {
    db.close();
  }
}
