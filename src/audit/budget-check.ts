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

export function checkBudgets(db: SqliteDatabase): BudgetCheck {
  const rows = db.prepare<[], CallRow>(
    `SELECT d.seq, d.call_id, d.agent, d.tool, d.amount_value, d.amount_currency,
       o.outcome, o.reason AS outcome_reason, o.action AS outcome_action,
       (SELECT s.outcome FROM audit_log s WHERE s.call_id = d.call_id AND s.kind = 'event' AND s.reason = 'settled' ORDER BY s.seq DESC LIMIT 1) AS settled,
       r.state, r.agent AS r_agent, r.tool AS r_tool, r.currency AS r_currency, r.amount_minor
     FROM audit_log d
     LEFT JOIN audit_log o ON o.call_id = d.call_id AND o.kind = 'outcome'
     LEFT JOIN reservations r ON r.call_id = d.call_id
     WHERE d.kind = 'decision' AND d.decision = 'allowed' AND d.tool IN ('create_invoice_payment', 'refund')
     ORDER BY d.seq`,
  );
  let calls = 0;
  for (const row of rows.iterate()) {
    calls += 1;
    const problem = problemOf(row);
    if (problem !== null) return { ok: false, calls, callId: row.call_id, seq: row.seq, problem };
  }
  const orphan = db
    .prepare<[], { call_id: string }>(
      `SELECT r.call_id FROM reservations r
       WHERE NOT EXISTS (SELECT 1 FROM audit_log d WHERE d.call_id = r.call_id AND d.kind = 'decision' AND d.decision = 'allowed')
       LIMIT 1`,
    )
    .get();
  if (orphan) return { ok: false, calls, callId: orphan.call_id, seq: 0, problem: 'a reservation no allowed decision row made' };
  return { ok: true, calls };
}
