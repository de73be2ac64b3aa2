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
}

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
  return null;
}

type LogRow = [seq: number, callId: string, kind: string, agent: string | null, tool: string, decision: string | null, value: string | null, currency: string | null, outcome: CallRow['outcome'], reason: string | null, action: string | null];
type ReservationRow = [callId: string, agent: string, tool: string, currency: string | null, amountMinor: number | null, state: NonNullable<CallRow['state']>];

/**
 * One pass over the log's rows of money-moving tools, in seq order (a decision, its outcome, a later 'settled'
 * event), then one over the reservations: a join by call id for each call would read the log in random order.
 */
export function checkBudgets(db: SqliteDatabase): BudgetCheck {
  const calls = new Map<string, CallRow>();
  const rows = db
    .prepare<[], LogRow>(
      `SELECT seq, call_id, kind, agent, tool, decision, amount_value, amount_currency, outcome, reason, action FROM audit_log NOT INDEXED
       WHERE tool IN ('create_invoice_payment', 'refund') AND (kind != 'event' OR reason = 'settled')`,
    )
    .raw();
  for (const [seq, callId, kind, agent, tool, decision, value, currency, outcome, reason, action] of rows.iterate()) {
    if (kind === 'decision') {
      if (decision !== 'allowed') continue;
      calls.set(callId, {
        seq, call_id: callId, agent, tool, amount_value: value, amount_currency: currency, outcome: null, outcome_reason: null, outcome_action: null,
        settled: null, state: null, r_agent: null, r_tool: null, r_currency: null, amount_minor: null,
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
  for (const [callId, agent, tool, currency, amountMinor, state] of db.prepare<[], ReservationRow>('SELECT call_id, agent, tool, currency, amount_minor, state FROM reservations').raw().iterate()) {
    const call = calls.get(callId);
    if (!call) return { ok: false, calls: calls.size, callId, seq: 0, problem: 'a reservation no allowed decision row made' };
    call.state = state;
    call.r_agent = agent;
    call.r_tool = tool;
    call.r_currency = currency;
    call.amount_minor = amountMinor;
  }
  // In log order, so the first problem reported is the oldest.
  for (const call of calls.values()) {
    const problem = problemOf(call);
    if (problem !== null) return { ok: false, calls: calls.size, callId: call.call_id, seq: call.seq, problem };
  }
  return { ok: true, calls: calls.size };
}
