/**
 * Reading the audit log call by call: a call's decision row joined with its outcome row (if any), filtered, newest
 * first, in pages, each with one plain sentence saying who did what and what was decided.
 */
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../database.js';
import { printable } from './printable.js';

export type CallOutcome = 'ok' | 'error' | 'pending' | 'unknown';

export interface CallFilter {
  agent?: string | undefined;
  tool?: string | undefined;
  decision?: 'allowed' | 'denied' | undefined;
  outcome?: CallOutcome | undefined;
  paymentId?: string | undefined;
  invoiceId?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  /** The call doing the reading, which is not yet finished and would otherwise list itself. */
  excludeCallId?: string | undefined;
}

export interface CallEntry {
  audit_id: string;
  seq: number;
  at: string;
  agent: string | null;
  transport: string | null;
  tool: string | null;
  decision: 'allowed' | 'denied';
  reason: string | null;
  reason_message: string | null;
  rule: string | null;
  /** sha256 of the policy file that decided, as written in the decision row. */
  policy_sha256: string | null;
  outcome: CallOutcome;
  invoice_id: string | null;
  payment_id: string | null;
  /** The payment link the call was about (the payment_id column holds a pl_ id for calls about a link). */
  payment_link_id: string | null;
  refund_id: string | null;
  amount: { value: string; currency: string } | null;
  /** An amount asked for whose currency only Mollie knows (a refused refund): the value alone. */
  amount_asked: string | null;
  error_code: string | null;
  error_message: string | null;
  duration_ms: number | null;
  summary: string;
}

/** A decision row joined with its outcome row, before it becomes a CallEntry. */
interface JoinedRow extends Omit<CallEntry, 'audit_id' | 'outcome' | 'amount' | 'amount_asked' | 'summary' | 'payment_id' | 'payment_link_id'> {
  call_id: string;
  decision_payment_id: string | null;
  outcome_payment_id: string | null;
  amount_value: string | null;
  amount_currency: string | null;
  action: string | null;
  outcome_action: string | null;
  outcome: 'ok' | 'error' | 'unknown' | null;
}

export class CursorError extends Error {}

export function encodeCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const text = /^[A-Za-z0-9_-]{1,32}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^seq:([1-9][0-9]{0,15})$/.exec(text);
  if (!match) throw new CursorError('cursor is not one this server handed out; pass the next_cursor of a previous list_logs result, or leave it out for the newest entries.');
  return Number(match[1]);
}

/**
 * How many rows of the log one page may look through for a filter no index answers (a tool, an outcome of ok or
 * error, allowed only): past it the page ends, possibly short, with a cursor to go on from. Every page then costs
 * about the same, however rare what is looked for: a few milliseconds, and never a scan of the whole log.
 */
export const SCAN_ROWS = 5_000;

/**
 * The index each filter reads, so a page costs the same on the millionth call as on the first: by payment or invoice,
 * the few calls that touched it (audit_payment, audit_invoice); by agent, that agent's decisions in seq order
 * (audit_agent); denied only, the denied decisions (audit_denied); an unknown outcome, the few such outcome rows
 * (audit_unknown); pending, the calls in flight (reservations, open_reads); otherwise the table itself, newest first.
 * A time range becomes a range of seq first (firstSeqAtOrAfter): rows are stamped in seq order, so they are the same
 * calls. What no index answers (a tool, ok or error, allowed) is looked for in at most SCAN_ROWS
 * rows per page.
 */
export function listCalls(db: SqliteDatabase, filter: CallFilter, limit: number, beforeSeq?: number): { entries: CallEntry[]; nextCursor: string | null } {
  const where: string[] = ["d.kind = 'decision'"];
  const params: Record<string, unknown> = { limit: limit + 1 };
  let source = 'audit_log d NOT INDEXED';
  const byOutcome = filter.outcome === 'unknown' || filter.outcome === 'pending';
  const selective = filter.paymentId !== undefined || filter.invoiceId !== undefined || byOutcome || (filter.decision === 'denied' && filter.agent === undefined);
  const unindexed = filter.tool !== undefined || filter.outcome !== undefined || filter.decision === 'allowed' || (filter.decision === 'denied' && filter.agent !== undefined);
  if (filter.outcome === 'unknown') {
    // The few unknown outcomes, the agent's only when one is asked for (an outcome row names its call's agent).
    source = 'audit_log d INDEXED BY audit_call';
    where.push(`d.call_id IN (SELECT call_id FROM audit_log INDEXED BY audit_unknown WHERE ${UNKNOWN_OUTCOMES}${filter.agent !== undefined ? ' AND agent = @agent' : ''} AND seq >= @unknownFrom)`);
  } else if (filter.outcome === 'pending') {
    // A call without its outcome yet still holds its reservation, or its open_reads mark: the calls in flight.
    source = 'audit_log d INDEXED BY audit_call';
    where.push("d.call_id IN (SELECT call_id FROM reservations WHERE state = 'reserved' UNION ALL SELECT call_id FROM open_reads)");
  } else if (filter.paymentId !== undefined || filter.invoiceId !== undefined) {
    source = 'audit_log d INDEXED BY audit_call';
  } else if (filter.agent !== undefined) {
    source = 'audit_log d INDEXED BY audit_agent';
  } else if (filter.decision === 'denied') {
    source = 'audit_log d INDEXED BY audit_denied';
  }
  if (filter.paymentId !== undefined) {
    where.push("d.call_id IN (SELECT call_id FROM audit_log WHERE payment_id = @payment AND kind IN ('decision', 'outcome'))");
    params.payment = filter.paymentId;
  }
  if (filter.invoiceId !== undefined) {
    where.push("d.call_id IN (SELECT call_id FROM audit_log WHERE invoice_id = @invoice AND kind IN ('decision', 'outcome'))");
    params.invoice = filter.invoiceId;
  }
  if (filter.agent !== undefined) { where.push('d.agent = @agent'); params.agent = filter.agent; }
  if (filter.tool !== undefined) { where.push('d.tool = @tool'); params.tool = filter.tool; }
  // Literal, not a parameter: only then may SQLite read the partial index of denied decisions.
  if (filter.decision !== undefined) where.push(filter.decision === 'denied' ? "d.decision = 'denied'" : "d.decision = 'allowed'");
  if (filter.outcome === 'pending') where.push('o.seq IS NULL');
  else if (filter.outcome !== undefined) { where.push('o.outcome = @outcome'); params.outcome = filter.outcome; }
  // The seq range, one lower and one upper bound: SQLite searches the primary key by one of each only.
  let low = 0;
  let high = Number.MAX_SAFE_INTEGER;
  if (filter.since !== undefined) {
    where.push('d.at >= @since');
    params.since = filter.since;
    low = firstSeqAtOrAfter(db, filter.since);
  }
  if (filter.until !== undefined) {
    where.push('d.at < @until');
    params.until = filter.until;
    high = firstSeqAtOrAfter(db, filter.until);
  }
  if (beforeSeq !== undefined) high = Math.min(high, beforeSeq);
  if (filter.excludeCallId !== undefined) { where.push('d.call_id != @exclude'); params.exclude = filter.excludeCallId; }
  // A filter no index answers looks through one window of rows below the cursor (or the range's end); the page says
  // where to go on.
  const bottom = low;
  let floor: number | null = null;
  if (unindexed && !selective) {
    const top = Math.min(high, lastSeq(db) + 1);
    floor = Math.max(0, top - SCAN_ROWS);
    low = Math.max(low, floor);
  }
  if (low > 0) { where.push('d.seq >= @low'); params.low = low; }
  if (high < Number.MAX_SAFE_INTEGER) { where.push('d.seq < @high'); params.high = high; }
  const query = statement(db,
    `SELECT d.seq, d.call_id, d.at, d.agent, d.transport, d.tool, d.decision, d.reason, d.reason_message, d.rule, d.policy_sha256,
            COALESCE(o.invoice_id, d.invoice_id) AS invoice_id, d.payment_id AS decision_payment_id, o.payment_id AS outcome_payment_id,
            o.refund_id, d.amount_value, d.amount_currency, d.action, o.action AS outcome_action, o.outcome,
            o.error_code, o.error_message, o.duration_ms
     FROM ${source} LEFT JOIN audit_log o INDEXED BY audit_call ON o.call_id = d.call_id AND o.kind = 'outcome'
     WHERE ${where.join(' AND ')}
     ORDER BY d.seq DESC LIMIT @limit`,
  );
  const rows = filter.outcome === 'unknown' ? newestUnknown(db, query, params, filter.agent !== undefined, limit, low) : query.all(params);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  if (rows.length > limit && last) return { entries: page.map(toEntry), nextCursor: encodeCursor(last.seq) };
  // The window ran out before the page filled: older rows remain to be looked through, from the window's floor.
  return { entries: page.map(toEntry), nextCursor: floor !== null && floor > Math.max(bottom, 1) ? encodeCursor(floor) : null };
}

const UNKNOWN_OUTCOMES = "kind = 'outcome' AND outcome = 'unknown'";

/**
 * The page of calls with an unknown outcome, from the newest such outcome rows first rather than all of them: a
 * call's decision comes before its outcome, so once the page's last call was decided after the oldest outcome row
 * looked at, no older one can belong on it. Looks at 4 x the page, then 4 times more each round.
 */
function newestUnknown(db: SqliteDatabase, query: Statement<Record<string, unknown>, JoinedRow>, params: Record<string, unknown>, byAgent: boolean, limit: number, low: number): JoinedRow[] {
  const nth = db.prepare<Record<string, unknown>, { seq: number }>(
    `SELECT seq FROM audit_log INDEXED BY audit_unknown WHERE ${UNKNOWN_OUTCOMES}${byAgent ? ' AND agent = @agent' : ''} ORDER BY seq DESC LIMIT 1 OFFSET @skip`,
  );
  for (let looked = (limit + 1) * 4; ; looked *= 4) {
    const from = nth.get({ agent: params.agent, skip: looked - 1 })?.seq ?? 0;
    const rows = query.all({ ...params, unknownFrom: from });
    if (from <= low || (rows.length > limit && rows[limit]!.seq >= from)) return rows;
  }
}

function lastSeq(db: SqliteDatabase): number {
  return (db.prepare('SELECT max(seq) AS seq FROM audit_log').get() as { seq: number | null }).seq ?? 0;
}

interface SeqLookups {
  bounds: Statement<[], { first: number | null; last: number | null }>;
  atOrAfter: Statement<[number], { seq: number; at: string }>;
}

const seqLookups = new WeakMap<SqliteDatabase, SeqLookups>();

/** Past every row: a time after the newest row matches nothing. */
const NO_ROW = Number.MAX_SAFE_INTEGER;

/**
 * The seq of the first row stamped at or after `at`, found by binary search on seq (about 21 primary-key reads on a
 * log of two million rows). Rows are stamped in seq order (audit-log.ts), so this needs no index on the time, which
 * would be one more page for every call to write.
 */
export function firstSeqAtOrAfter(db: SqliteDatabase, at: string): number {
  let lookups = seqLookups.get(db);
  if (!lookups) {
    lookups = {
      // One subquery each: SQLite answers a lone min() or max() from the primary key, but scans for both at once.
      bounds: db.prepare('SELECT (SELECT min(seq) FROM audit_log) AS first, (SELECT max(seq) FROM audit_log) AS last'),
      atOrAfter: db.prepare('SELECT seq, at FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT 1'),
    };
    seqLookups.set(db, lookups);
  }
  const { first, last } = lookups.bounds.get() ?? { first: null, last: null };
  if (first === null || last === null) return NO_ROW;
  // The smallest probe whose first row at or after it is stamped at or after `at`; last + 1 if there is none.
  let low = first;
  let high = last + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const row = lookups.atOrAfter.get(middle);
    if (row === undefined || row.at >= at) high = middle;
    else low = middle + 1;
  }
  return lookups.atOrAfter.get(low)?.seq ?? NO_ROW;
}

/** Prepared once per query shape and database: a filter combination is one of a few dozen shapes. */
const prepared = new WeakMap<SqliteDatabase, Map<string, Statement<Record<string, unknown>, JoinedRow>>>();

function statement(db: SqliteDatabase, sql: string): Statement<Record<string, unknown>, JoinedRow> {
  let cache = prepared.get(db);
  if (!cache) {
    cache = new Map();
    prepared.set(db, cache);
  }
  let found = cache.get(sql);
  if (!found) {
    found = db.prepare<Record<string, unknown>, JoinedRow>(sql);
    cache.set(sql, found);
  }
  return found;
}

function toEntry(row: JoinedRow): CallEntry {
  const outcome: CallOutcome = row.outcome ?? 'pending';
  return {
    audit_id: row.call_id,
    seq: row.seq,
    at: row.at,
    agent: row.agent,
    transport: row.transport,
    tool: row.tool,
    decision: row.decision,
    reason: row.reason,
    reason_message: row.reason_message,
    rule: row.rule,
    policy_sha256: row.policy_sha256,
    outcome,
    invoice_id: row.invoice_id,
    payment_id: firstWithPrefix('tr_', row.outcome_payment_id, row.decision_payment_id),
    payment_link_id: firstWithPrefix('pl_', row.outcome_payment_id, row.decision_payment_id),
    refund_id: row.refund_id,
    amount: row.amount_value !== null && row.amount_currency !== null ? { value: row.amount_value, currency: row.amount_currency } : null,
    amount_asked: row.amount_value !== null && row.amount_currency === null ? row.amount_value : null,
    error_code: row.error_code,
    error_message: row.error_message,
    duration_ms: row.duration_ms,
    summary: summarize(row, outcome),
  };
}

/** A call's rows name a payment, a payment link or both in their payment_id column: the outcome's first. */
function firstWithPrefix(prefix: 'tr_' | 'pl_', ...ids: (string | null)[]): string | null {
  return ids.find((id) => id !== null && id.startsWith(prefix)) ?? null;
}

/** "billing-bot asked to refund 20.00 EUR of payment tr_x: allowed; refund re_y is pending." */
export function summarize(row: Pick<JoinedRow, 'agent' | 'tool' | 'action' | 'decision' | 'reason' | 'reason_message' | 'outcome_action' | 'error_message'>, outcome: CallOutcome): string {
  return printable(sentence(row, outcome));
}

function sentence(row: Pick<JoinedRow, 'agent' | 'tool' | 'action' | 'decision' | 'reason' | 'reason_message' | 'outcome_action' | 'error_message'>, outcome: CallOutcome): string {
  const who = row.agent ?? 'A caller with no agent';
  const what = row.action ?? `call ${row.tool ?? 'an unknown tool'}`;
  // Not a policy denial: what was asked could not be done, found before the policy's amount checks.
  if (row.decision === 'denied' && row.reason === 'precondition_failed') return `${who} asked to ${what}: not done, it cannot be done as asked. ${row.reason_message ?? ''}`.trim();
  if (row.decision === 'denied') return `${who} asked to ${what}: denied. ${row.reason_message ?? ''}`.trim();
  // Who let a money-moving call through is the first sentence of its decision message.
  // It ends at the first ")." : "Approved by jo.doe (approval ap_x)." or "Confirmed in the client (the person at X approved it).".
  const sentence = (row.reason === 'approved' || row.reason === 'confirmed') && row.reason_message ? /^.*?\)(?=\.)/.exec(row.reason_message)?.[0] : undefined;
  const person = sentence ? `, ${sentence.charAt(0).toLowerCase()}${sentence.slice(1)}` : '';
  switch (outcome) {
    case 'ok':
      return `${who} asked to ${what}: allowed${person}; ${row.outcome_action ?? 'done'}.`;
    case 'error':
      return `${who} asked to ${what}: allowed${person}, but it failed: ${row.error_message ?? 'no detail recorded'}`;
    case 'unknown':
      return `${who} asked to ${what}: allowed${person}, but whether it took effect at Mollie is unknown (${row.error_message ?? 'no answer'}).`;
    case 'pending':
      return `${who} asked to ${what}: allowed${person}; no outcome recorded yet.`;
  }
}
