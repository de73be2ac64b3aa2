/**
 * The audit log: append-only rows (triggers refuse UPDATE and DELETE), two per call (decision, outcome) linked by the
 * call id, each hash-chained to the one before: hash = sha256(prev_hash || canonical JSON of the row). Appends take
 * the write lock first (BEGIN IMMEDIATE), so several processes on one file still build one unbroken chain.
 */
import { createHash } from 'node:crypto';
import { immediate, type SqliteDatabase } from '../database.js';
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

/** The hash of a row: everything but prev_hash and hash themselves, in canonical form, after the previous hash. */
export function rowHash(row: Omit<AuditRow, 'hash'>): string {
  const { prev_hash: prev, ...content } = row;
  return createHash('sha256').update(prev).update(canonicalJson(content)).digest('hex');
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
    this.lastRow = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    this.insertRow = db.prepare(
      `INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map((column) => `@${column}`).join(', ')})`,
    );
  }

  /** Appends one row to the chain. Inside a caller's transaction it joins it; otherwise it takes the write lock. */
  append(fields: Partial<AuditFields> & Pick<AuditFields, 'call_id' | 'kind'>): AuditRow {
    return immediate(this.db, () => {
      const last = this.lastRow.get();
      const unhashed: Omit<AuditRow, 'hash'> = {
        ...EMPTY,
        ...fields,
        seq: (last?.seq ?? 0) + 1,
        at: this.clock().toISOString(),
        prev_hash: last?.hash ?? GENESIS_HASH,
      };
      const row: AuditRow = { ...unhashed, hash: rowHash(unhashed) };
      this.insertRow.run(row);
      return row;
    });
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
  ): void {
    immediate(this.db, () => {
      this.append({ ...call, ...decision, kind: 'decision', decision: 'denied' });
      this.append({ ...call, kind: 'outcome', outcome: 'error', error_code: error.code, error_message: error.message, duration_ms: durationMs });
    });
  }

  /** Recomputes the whole chain from the first row; reports the first row that does not fit. */
  verify(): VerifyResult {
    const rows = this.db.prepare<[], AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ORDER BY seq`);
    let expectedPrev = GENESIS_HASH;
    let expectedSeq = 1;
    let count = 0;
    for (const row of rows.iterate()) {
      const bad = (problem: string): VerifyResult => ({ ok: false, rows: count, firstBad: { seq: row.seq, call_id: row.call_id, problem } });
      if (row.seq !== expectedSeq) return bad(`row ${expectedSeq} is missing: the next row is ${row.seq}`);
      if (row.prev_hash !== expectedPrev) return bad('its prev_hash does not match the hash of the row before it');
      const { hash, ...unhashed } = row;
      if (rowHash(unhashed) !== hash) return bad('its contents do not match its hash: the row was changed after it was written');
      expectedPrev = hash;
      expectedSeq += 1;
      count += 1;
    }
    return { ok: true, rows: count, lastHash: expectedPrev };
  }

  /** Every row in order, for export. */
  *rows(): IterableIterator<AuditRow> {
    yield* this.db.prepare<[], AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ORDER BY seq`).iterate();
  }
}
