/**
 * The audit log: append-only rows (triggers refuse UPDATE and DELETE), two per call (decision, outcome) linked by the
 * call id, each hash-chained to the one before: hash = sha256(prev_hash || canonical JSON of the row). Appends take
 * the write lock first (BEGIN IMMEDIATE), so several processes on one file still build one unbroken chain.
 */
import { hashHex } from '../crypto-on-demand.js';
import { immediate, immediateWhenFree, isPostgres, type Durability, type SqliteDatabase } from '../database.js';
import { canonicalJson } from './canonical-json.js';

export const GENESIS_HASH = '0'.repeat(64);

export type RowKind = 'decision' | 'outcome' | 'event';
export type Outcome = 'ok' | 'error' | 'unknown';

/** The columns of one row, as written; every field that does not apply is null. */
export interface AuditFields {
  call_id: string;
  kind: RowKind;
  agent: string | null;
  transport: string | null;
  client_name: string | null;
  tool: string | null;
  arguments: string | null;
  invoice_id: string | null;
  payment_id: string | null;
  refund_id: string | null;
  amount_value: string | null;
  amount_currency: string | null;
  decision: 'allowed' | 'denied' | null;
  reason: string | null;
  reason_message: string | null;
  rule: string | null;
  policy_sha256: string | null;
  idempotency_key: string | null;
  action: string | null;
  outcome: Outcome | null;
  error_code: string | null;
  error_message: string | null;
  mollie_error: string | null;
  duration_ms: number | null;
}

export interface AuditRow extends AuditFields {
  seq: number;
  at: string;
  prev_hash: string;
  hash: string;
}

export const AUDIT_COLUMNS = [
  'seq', 'call_id', 'kind', 'at', 'agent', 'transport', 'client_name', 'tool', 'arguments', 'invoice_id', 'payment_id',
  'refund_id', 'amount_value', 'amount_currency', 'decision', 'reason', 'reason_message', 'rule', 'policy_sha256',
  'idempotency_key', 'action', 'outcome', 'error_code', 'error_message', 'mollie_error', 'duration_ms', 'prev_hash', 'hash',
] as const;

/** The hashed columns in canonical (sorted) key order: every column but prev_hash and hash. */
const HASHED_COLUMNS = AUDIT_COLUMNS.filter((column) => column !== 'prev_hash' && column !== 'hash').sort();
const HASHED_KEYS = HASHED_COLUMNS.map((column) => JSON.stringify(column));

/**
 * canonicalJson of a row's hashed columns, written out for the one shape rows have: the same bytes, without sorting
 * keys and walking values for each of the two rows a call writes and each row `audit verify` reads.
 */
export function canonicalRow(row: Omit<AuditRow, 'hash' | 'prev_hash'>): string {
  let text = '{';
  for (let i = 0; i < HASHED_COLUMNS.length; i++) {
    const value = (row as unknown as Record<string, unknown>)[HASHED_COLUMNS[i]!];
    if (value === undefined) continue;
    const json = value === null ? 'null' : typeof value === 'string' ? JSON.stringify(value) : canonicalJson(value);
    text += `${text.length === 1 ? '' : ','}${HASHED_KEYS[i]!}:${json}`;
  }
  return `${text}}`;
}

/** The hash of a row: everything but prev_hash and hash themselves, in canonical form, after the previous hash. */
export function rowHash(row: Omit<AuditRow, 'hash'>): string {
  return hashHex('sha256', row.prev_hash + canonicalRow(row));
}

/**
 * SQLite stores text as UTF-8, where a lone surrogate (a client name decoded from "\ud800", say) becomes U+FFFD. Hashed
 * as given, such a row would no longer match its hash once stored, and `audit verify` would report it as changed. Text
 * is made well-formed first, so what is hashed is what is stored; NUL characters too (below).
 */
function stored<T extends string | number | null>(value: T | undefined): T | null {
  if (value === undefined) return null;
  if (typeof value !== 'string') return value;
  let text: string = value;
  if (!(text as unknown as WellFormedString).isWellFormed()) text = (text as unknown as WellFormedString).toWellFormed();
  // PostgreSQL text cannot hold U+0000 (a client may name itself "evil\u0000client"): it becomes U+FFFD on every store,
  // before hashing, so the row is written, and hashes the same on both.
  if (text.includes('\u0000')) text = text.replaceAll('\u0000', '\ufffd');
  return text as T;
}

/** ES2024 string methods, in Node since 20; this project's TypeScript lib is ES2022. */
interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * Rows are stamped in seq order: a clock that stepped back (NTP, another machine's process on a shared file) stamps a
 * row with the previous row's time, never an earlier one. That keeps time ranges and seq ranges the same calls, which
 * is what lets list_logs turn a time filter into an index range.
 */
function stampAfter(now: string, previous: string | undefined): string {
  return previous !== undefined && previous > now ? previous : now;
}

export type AppendFields = Partial<AuditFields> & Pick<AuditFields, 'call_id' | 'kind'>;

/**
 * The row that goes after `last` (none: the first row), stamped no earlier than it, with its hash: the one way every
 * store builds a row, so the same call hashes the same on SQLite and PostgreSQL.
 */
export function chainRow(fields: AppendFields, last: { seq: number; at: string; hash: string } | undefined, now: Date): AuditRow {
  // One object of one shape, written out: rows are the hot path of every call.
  const row: AuditRow = {
    seq: (last?.seq ?? 0) + 1,
    call_id: stored(fields.call_id)!,
    kind: fields.kind,
    at: stampAfter(now.toISOString(), last?.at),
    agent: stored(fields.agent),
    transport: stored(fields.transport),
    client_name: stored(fields.client_name),
    tool: stored(fields.tool),
    arguments: stored(fields.arguments),
    invoice_id: stored(fields.invoice_id),
    payment_id: stored(fields.payment_id),
    refund_id: stored(fields.refund_id),
    amount_value: stored(fields.amount_value),
    amount_currency: stored(fields.amount_currency),
    decision: fields.decision ?? null,
    reason: stored(fields.reason),
    reason_message: stored(fields.reason_message),
    rule: stored(fields.rule),
    policy_sha256: stored(fields.policy_sha256),
    idempotency_key: stored(fields.idempotency_key),
    action: stored(fields.action),
    outcome: fields.outcome ?? null,
    error_code: stored(fields.error_code),
    error_message: stored(fields.error_message),
    mollie_error: stored(fields.mollie_error),
    duration_ms: fields.duration_ms ?? null,
    prev_hash: last?.hash ?? GENESIS_HASH,
    hash: '',
  };
  row.hash = rowHash(row);
  return row;
}

export type VerifyResult =
  | { ok: true; rows: number; lastHash: string }
  | { ok: false; rows: number; firstBad: { seq: number; call_id: string | null; problem: string } };

export class AuditLog {
  private readonly lastRow;
  private readonly insertRow;
  private listener: (() => void) | null = null;

  constructor(
    readonly db: SqliteDatabase,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.lastRow = db.prepare<[], { seq: number; at: string; hash: string }>('SELECT seq, at, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    this.insertRow = db.prepare(
      `INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map((column) => `@${column}`).join(', ')})`,
    );
  }

  /** Appends one row to the chain. Inside a caller's transaction it joins it; otherwise it takes the write lock. */
  append(fields: AppendFields, durability: Durability = 'full'): AuditRow {
    return immediate(this.db, () => {
      const row = chainRow(fields, this.lastRow.get(), this.clock());
      this.insertRow.run(row);
      this.listener?.();
      return row;
    }, durability);
  }

  /** Told of every row appended (signed checkpoints count them); one listener. */
  onAppend(listener: () => void): void {
    this.listener = listener;
  }

  /**
   * A call refused before anything happened: its denied decision row and its error outcome row, both or neither, so a
   * refused call never looks as if it were still running.
   */
  appendRefusal(
    call: Pick<AuditFields, 'call_id'> & Partial<AuditFields>,
    decision: Partial<AuditFields>,
    error: { code: string; message: string },
    durationMs: number | null,
    durability: Durability = 'full',
  ): void {
    immediate(this.db, () => {
      this.append({ ...call, ...decision, kind: 'decision', decision: 'denied' });
      this.append({ ...call, kind: 'outcome', outcome: 'error', error_code: error.code, error_message: error.message, duration_ms: durationMs });
    }, durability);
  }

  /** append(), waiting for another process's write lock without holding the event loop (see immediateWhenFree). */
  appendWhenFree(fields: Partial<AuditFields> & Pick<AuditFields, 'call_id' | 'kind'>, durability: Durability = 'full'): Promise<AuditRow> {
    return immediateWhenFree(this.db, () => this.append(fields, durability), durability);
  }

  /** appendRefusal(), waiting for another process's write lock without holding the event loop. */
  appendRefusalWhenFree(...args: Parameters<AuditLog['appendRefusal']>): Promise<void> {
    return immediateWhenFree(this.db, () => this.appendRefusal(...args), args[4] ?? 'full');
  }

  /** Recomputes the whole chain from the first row; reports the first row that does not fit. */
  verify(): VerifyResult {
    return verifyChain(this.db);
  }

  /** Every row in order, for export; on PostgreSQL a page at a time, so the whole log is never held at once. */
  *rows(): IterableIterator<AuditRow> {
    if (!isPostgres(this.db)) {
      yield* this.db.prepare<[], AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ORDER BY seq`).iterate();
      return;
    }
    yield* rowsInPages(this.db, 1);
  }
}

/**
 * SQLite writes each row's canonical JSON itself (json_object, keys in canonical order), so a row crosses into
 * JavaScript as four values instead of twenty-eight: three times faster. Its escaping is JSON.stringify's for every
 * string SQLite can hold; should any row still differ (a REAL written by some other program, say), that row is
 * recomputed the way it was written before it is called bad, so the answer is always the one canonicalRow gives.
 */
const VERIFY_SQL = `SELECT seq, call_id, prev_hash, hash, json_object(${HASHED_COLUMNS.map((column) => `'${column}', ${column}`).join(', ')})
  FROM audit_log WHERE seq >= ? ORDER BY seq`;
const ROW_SQL = `SELECT ${HASHED_COLUMNS.join(', ')} FROM audit_log WHERE seq = ?`;

/**
 * Walks the chain from row `fromSeq` (whose prev_hash must be `expectedPrev`) to the end, or through `rows` rows.
 * Each row is checked against its own stored prev_hash and hash, so ranges of one chain can be checked separately.
 */
export function verifyChain(db: SqliteDatabase, fromSeq = 1, expectedPrev = GENESIS_HASH, rows = Number.POSITIVE_INFINITY): VerifyResult {
  if (isPostgres(db)) return verifyChainInPages(db, fromSeq, expectedPrev, rows);
  const statement = db.prepare<[number], [number, string | null, string, string, string]>(VERIFY_SQL).raw(true);
  const oneRow = db.prepare<[number], Omit<AuditRow, 'hash' | 'prev_hash'>>(ROW_SQL);
  let expectedSeq = fromSeq;
  let count = 0;
  if (fromSeq === 1) {
    // The chain starts at row 1: a row below it (inserted with its triggers dropped) would be listed and exported
    // but never hashed into the chain.
    const below = db.prepare<[], { seq: number; call_id: string | null }>('SELECT seq, call_id FROM audit_log WHERE seq < 1 ORDER BY seq LIMIT 1').get();
    if (below) return { ok: false, rows: 0, firstBad: { seq: below.seq, call_id: below.call_id, problem: `row ${below.seq} lies below the chain's first row: it was inserted outside the chain` } };
  }
  for (const [seq, callId, prev, hash, canonical] of statement.iterate(fromSeq)) {
    if (count >= rows) break;
    const bad = (problem: string): VerifyResult => ({ ok: false, rows: count, firstBad: { seq, call_id: callId, problem } });
    if (seq !== expectedSeq) return bad(`row ${expectedSeq} is missing: the next row is ${seq}`);
    if (prev !== expectedPrev) return bad('its prev_hash does not match the hash of the row before it');
    if (hashHex('sha256', prev + canonical) !== hash && hashHex('sha256', prev + canonicalRow(oneRow.get(seq)!)) !== hash) {
      return bad('its contents do not match its hash: the row was changed after it was written');
    }
    expectedPrev = hash;
    expectedSeq += 1;
    count += 1;
  }
  return { ok: true, rows: count, lastHash: expectedPrev };
}

const PAGE_ROWS = 5_000;
const PAGE_SQL = `SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ${PAGE_ROWS}`;

/** The log's rows from `fromSeq` in seq order, a page at a time: on PostgreSQL the whole log is never held at once. */
function* rowsInPages(db: SqliteDatabase, fromSeq: number): IterableIterator<AuditRow> {
  const page = db.prepare<[number], AuditRow>(PAGE_SQL);
  for (let next = fromSeq; ; ) {
    const rows = page.all(next);
    yield* rows;
    if (rows.length < PAGE_ROWS) return;
    next = rows[rows.length - 1]!.seq + 1;
  }
}

/**
 * verifyChain on PostgreSQL: each row's canonical JSON is made here (the database has no json_object of SQLite's
 * bytes), in seq order. seq is at least 1 by the table's check.
 */
function verifyChainInPages(db: SqliteDatabase, fromSeq: number, expectedPrev: string, rows: number): VerifyResult {
  let expectedSeq = fromSeq;
  let count = 0;
  for (const row of rowsInPages(db, fromSeq)) {
    if (count >= rows) break;
    const bad = (problem: string): VerifyResult => ({ ok: false, rows: count, firstBad: { seq: row.seq, call_id: row.call_id, problem } });
    if (row.seq !== expectedSeq) return bad(`row ${expectedSeq} is missing: the next row is ${row.seq}`);
    if (row.prev_hash !== expectedPrev) return bad('its prev_hash does not match the hash of the row before it');
    if (rowHash(row) !== row.hash) return bad('its contents do not match its hash: the row was changed after it was written');
    expectedPrev = row.hash;
    expectedSeq += 1;
    count += 1;
  }
  return { ok: true, rows: count, lastHash: expectedPrev };
}
