/**
 * The audit log: append-only rows (triggers refuse UPDATE and DELETE), two per call (decision, outcome) linked by the
 * call id, each hash-chained to the one before: hash = sha256(prev_hash || canonical JSON of the row). Appends take
 * the write lock first (BEGIN IMMEDIATE), so several processes on one file still build one unbroken chain.
 */
import { hash as digest } from 'node:crypto';
import { immediate, type Durability, type SqliteDatabase } from '../database.js';
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

const EMPTY: Omit<AuditFields, 'call_id' | 'kind'> = {
  agent: null, transport: null, client_name: null, tool: null, arguments: null, invoice_id: null, payment_id: null,
  refund_id: null, amount_value: null, amount_currency: null, decision: null, reason: null, reason_message: null, rule: null,
  policy_sha256: null, idempotency_key: null, action: null, outcome: null, error_code: null, error_message: null,
  mollie_error: null, duration_ms: null,
};

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
  return digest('sha256', row.prev_hash + canonicalRow(row), 'hex');
}

/**
 * Rows are stamped in seq order: a clock that stepped back (NTP, another machine's process on a shared file) stamps a
 * row with the previous row's time, never an earlier one. That keeps time ranges and seq ranges the same calls, which
 * is what lets list_logs turn a time filter into an index range.
 */
function stampAfter(now: string, previous: string | undefined): string {
  return previous !== undefined && previous > now ? previous : now;
}

export type VerifyResult =
  | { ok: true; rows: number; lastHash: string }
  | { ok: false; rows: number; firstBad: { seq: number; call_id: string | null; problem: string } };

export class AuditLog {
  private readonly lastRow;
  private readonly insertRow;

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
  append(fields: Partial<AuditFields> & Pick<AuditFields, 'call_id' | 'kind'>, durability: Durability = 'full'): AuditRow {
    return immediate(this.db, () => {
      const last = this.lastRow.get();
      const unhashed: Omit<AuditRow, 'hash'> = {
        ...EMPTY,
        ...fields,
        seq: (last?.seq ?? 0) + 1,
        at: stampAfter(this.clock().toISOString(), last?.at),
        prev_hash: last?.hash ?? GENESIS_HASH,
      };
      const row: AuditRow = { ...unhashed, hash: rowHash(unhashed) };
      this.insertRow.run(row);
      return row;
    }, durability);
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

  /** Recomputes the whole chain from the first row; reports the first row that does not fit. */
  verify(): VerifyResult {
    return verifyChain(this.db);
  }

  /** Every row in order, for export. */
  *rows(): IterableIterator<AuditRow> {
    yield* this.db.prepare<[], AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ORDER BY seq`).iterate();
  }
}

/** The hashed columns in canonical order, then prev_hash and hash: rows come back as arrays, which is twice as fast. */
const VERIFY_SQL = `SELECT ${HASHED_COLUMNS.join(', ')}, prev_hash, hash FROM audit_log WHERE seq >= ? ORDER BY seq`;
const SEQ = HASHED_COLUMNS.indexOf('seq');
const CALL_ID = HASHED_COLUMNS.indexOf('call_id');

/**
 * Walks the chain from row `fromSeq` (whose prev_hash must be `expectedPrev`) to the end, or through `rows` rows.
 * Each row is checked against its own stored prev_hash and hash, so ranges of one chain can be checked separately.
 */
export function verifyChain(db: SqliteDatabase, fromSeq = 1, expectedPrev = GENESIS_HASH, rows = Number.POSITIVE_INFINITY): VerifyResult {
  const statement = db.prepare<[number], unknown[]>(VERIFY_SQL).raw(true);
  let expectedSeq = fromSeq;
  let count = 0;
  for (const row of statement.iterate(fromSeq)) {
    if (count >= rows) break;
    const seq = row[SEQ] as number;
    const bad = (problem: string): VerifyResult => ({ ok: false, rows: count, firstBad: { seq, call_id: row[CALL_ID] as string | null, problem } });
    if (seq !== expectedSeq) return bad(`row ${expectedSeq} is missing: the next row is ${seq}`);
    const prev = row[HASHED_COLUMNS.length] as string;
    if (prev !== expectedPrev) return bad('its prev_hash does not match the hash of the row before it');
    let text = '{';
    for (let i = 0; i < HASHED_COLUMNS.length; i++) {
      const value = row[i];
      text += `${i === 0 ? '' : ','}${HASHED_KEYS[i]!}:${value === null ? 'null' : typeof value === 'string' ? JSON.stringify(value) : canonicalJson(value)}`;
    }
    const hash = row[HASHED_COLUMNS.length + 1] as string;
    if (digest('sha256', `${prev}${text}}`, 'hex') !== hash) return bad('its contents do not match its hash: the row was changed after it was written');
    expectedPrev = hash;
    expectedSeq += 1;
    count += 1;
  }
  return { ok: true, rows: count, lastHash: expectedPrev };
}
