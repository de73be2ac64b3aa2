/**
 * Budgets are counted from the reservations table, which is not hashed: rewritten or deleted, it would hand a day's
 * budget back with no trace in the chain. Everything a reservation says is also in hashed rows: the allowed decision
 * (agent, tool, amount), the outcome (and, for a reused link or checkout, reason nothing_moved), and the 'settled'
 * event of an outcome that was unknown. `audit verify` derives each money-moving call's reservation from those rows and
 * compares: a reservation missing, released where the rows say the money moved, or for less than was decided, fails.
 */
import type { SqliteDatabase } from '../database.js';
import { parseAmount } from '../mollie/money.js';

export type BudgetCheck =
  | { ok: true; calls: number }
  | { ok: false; calls: number; callId: string; seq: number; problem: string };

/** A money-moving call as its hashed rows tell it, joined with its reservation. */
interface CallRow {
  seq: number;
  at: string;
  decision_reason: string | null;
  arguments: string | null;
  payment_id: string | null;
  call_id: string;
  agent: string | null;
  tool: string;
  amount_value: string | null;
  amount_currency: string | null;
  outcome: 'ok' | 'error' | 'unknown' | null;
  outcome_reason: string | null;
  outcome_action: string | null;
  settled: 'ok' | 'error' | null;
  state: 'reserved' | 'spent' | 'released' | 'unknown' | null;
  r_agent: string | null;
  r_tool: string | null;
  r_currency: string | null;
  amount_minor: number | null;
  reserved_at: string | null;
  approved: number | null;
  repeat_key: string | null;
}

/** The gate dated reservations by the real clock before 0.5, a few milliseconds from their decision row. */
const DATE_SLACK_MS = 2_000;

/** What the hashed rows say the reservation must be now. */
function expectedState(row: CallRow): 'reserved' | 'spent' | 'released' | 'unknown' {
  if (row.outcome === null) return 'reserved';
  if (row.outcome === 'error') return 'released';
  if (row.outcome === 'unknown') return row.settled === null ? 'unknown' : row.settled === 'ok' ? 'spent' : 'released';
  // Before 0.5 a reuse said so only in its action.
  const nothingMoved = row.outcome_reason === 'nothing_moved' || /^(reused|returned) /.test(row.outcome_action ?? '');
  return nothingMoved ? 'released' : 'spent';
}

function problemOf(row: CallRow): string | null {
  if (row.state === null) return 'its reservation is gone, so the budget it used was handed back';
  if (row.r_agent !== row.agent || row.r_tool !== row.tool) return `its reservation names agent "${row.r_agent}" and ${row.r_tool}, the decision "${row.agent}" and ${row.tool}`;
  const expected = expectedState(row);
  if (row.state !== expected) return `its reservation is ${row.state}, but its rows say ${expected}`;
  if (expected === 'released' || row.amount_value === null || row.amount_currency === null) return null;
  // A reuse reserves nothing while it runs: null is right for a call still in flight, never once the money moved.
  if (row.amount_minor === null && expected === 'reserved') return null;
  let decided: number;
  try {
    decided = parseAmount(row.amount_value, row.amount_currency);
  } catch {
    return `its decision row's amount ${row.amount_value} ${row.amount_currency} cannot be read`;
  }
  if (row.amount_minor !== decided || row.r_currency !== row.amount_currency) {
    return `its reservation counts ${row.amount_minor ?? 'nothing'} minor units of ${row.r_currency ?? '?'}, the decision ${row.amount_value} ${row.amount_currency}`;
  }
  // Dated earlier, it would leave the rolling 24 hours (per_day, count_per_day, confirm_above) too soon.
  if (row.reserved_at === null || !(Date.parse(row.reserved_at) >= Date.parse(row.at) - DATE_SLACK_MS)) {
    return `its reservation is dated ${row.reserved_at}, before its decision at ${row.at}, so it would stop counting early`;
  }
  // Marked approved, it would not count towards confirm_above; only a person's yes, in the decision row, does that.
  if (row.approved === 1 && row.decision_reason !== 'approved' && row.decision_reason !== 'confirmed') {
    return `its reservation is marked approved, but its decision (${row.decision_reason}) names no approval`;
  }
  // The duplicate-refund guard finds earlier refunds by this key.
  if (row.tool === 'refund' && row.payment_id !== null && !allowsRepeat(row.arguments)) {
    const key = `refund:${row.payment_id}:${row.amount_currency}:${decided}`;
    if (row.repeat_key !== key) return `its reservation's repeat key is ${row.repeat_key === null ? 'missing' : `"${row.repeat_key}"`}, not "${key}", so an identical refund would not be caught`;
  }
  return null;
}

function allowsRepeat(argumentsJson: string | null): boolean {
  try {
    return (JSON.parse(argumentsJson ?? '{}') as { allow_repeat?: unknown }).allow_repeat === true;
  } catch {
    return false;
  }
}

type LogRow = [
  seq: number, callId: string, kind: string, at: string, agent: string | null, tool: string, decision: string | null, value: string | null, currency: string | null,
  outcome: CallRow['outcome'], reason: string | null, action: string | null, args: string | null, paymentId: string | null,
];
type ReservationRow = [callId: string, agent: string, tool: string, currency: string | null, amountMinor: number | null, state: NonNullable<CallRow['state']>, reservedAt: string, approved: number | null, repeatKey: string | null];

/**
 * One pass over the log's rows of money-moving tools, in seq order (a decision, its outcome, a later 'settled'
 * event), then one over the reservations: a join by call id for each call would read the log in random order.
 */
export function checkBudgets(db: SqliteDatabase): BudgetCheck {
  const calls = new Map<string, CallRow>();
  const rows = db
    .prepare<[], LogRow>(
      `SELECT seq, call_id, kind, at, agent, tool, decision, amount_value, amount_currency, outcome, reason, action,
              CASE WHEN kind = 'decision' AND tool = 'refund' THEN arguments END, payment_id FROM audit_log NOT INDEXED
       WHERE tool IN ('create_invoice_payment', 'refund') AND (kind != 'event' OR reason = 'settled') ORDER BY seq`,
    )
    .raw();
  for (const [seq, callId, kind, at, agent, tool, decision, value, currency, outcome, reason, action, args, paymentId] of rows.iterate()) {
    if (kind === 'decision') {
      if (decision !== 'allowed') continue;
      calls.set(callId, {
        seq, at, decision_reason: reason, arguments: args, payment_id: paymentId, call_id: callId, agent, tool, amount_value: value, amount_currency: currency,
        outcome: null, outcome_reason: null, outcome_action: null, settled: null, state: null, r_agent: null, r_tool: null, r_currency: null, amount_minor: null,
        reserved_at: null, approved: null, repeat_key: null,
      });
      continue;
    }
    const call = calls.get(callId);
    if (!call) continue;
    if (kind === 'outcome') {
      call.outcome = outcome;
      call.outcome_reason = reason;
      call.outcome_action = action;
    } else if (outcome === 'ok' || outcome === 'error') {
      call.settled = outcome;
    }
  }
  const reservations = db.prepare<[], ReservationRow>('SELECT call_id, agent, tool, currency, amount_minor, state, reserved_at, approved, repeat_key FROM reservations').raw();
  for (const [callId, agent, tool, currency, amountMinor, state, reservedAt, approved, repeatKey] of reservations.iterate()) {
    const call = calls.get(callId);
    if (!call) return { ok: false, calls: calls.size, callId, seq: 0, problem: 'a reservation no allowed decision row made' };
    call.state = state;
    call.r_agent = agent;
    call.r_tool = tool;
    call.r_currency = currency;
    call.amount_minor = amountMinor;
    call.reserved_at = reservedAt;
    call.approved = approved;
    call.repeat_key = repeatKey;
  }
  // In log order, so the first problem reported is the oldest.
  for (const call of calls.values()) {
    const problem = problemOf(call);
    if (problem !== null) return { ok: false, calls: calls.size, callId: call.call_id, seq: call.seq, problem };
  }
  return { ok: true, calls: calls.size };
}
