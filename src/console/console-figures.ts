/**
 * The numbers behind the console's pictures: money moved per agent per day and denials per day over the last 30
 * days, and the state of the hash chain. Money stays integer minor units here; the page formats it.
 */
import { firstSeqAtOrAfter } from '../audit/call-entries.js';
import type { SqliteDatabase } from '../database.js';
import { currencyDecimals } from '../mollie/money.js';

export const CHART_DAYS = 30;

export interface MoneySeries {
  currency: string;
  decimals: number;
  /** agent -> minor units per day, aligned with `days`. */
  byAgent: { agent: string; tool: string; minor: number[] }[];
}

export interface Figures {
  days: string[];
  money: MoneySeries[];
  /** Denied calls per day, not counting those that only waited for a person's approval... */
  denials: number[];
  /** ...which are these: approval_required and approval_pending. */
  approvalWaits: number[];
  chain: { rows: number; headHash: string | null; headAt: string | null; lastVerify: { at: string; by: string; result: string } | null };
}

export function dayList(now: Date, days = CHART_DAYS): string[] {
  const list: string[] = [];
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  for (let i = days - 1; i >= 0; i -= 1) list.push(new Date(today - i * 86_400_000).toISOString().slice(0, 10));
  return list;
}

export function consoleFigures(db: SqliteDatabase, now: Date): Figures {
  const days = dayList(now);
  const since = `${days[0]!}T00:00:00.000Z`;
  const index = new Map(days.map((day, i) => [day, i]));
  // What each agent's calls moved, settled and spent: pay links asked for and refunds, by day, tool and currency.
  // NOT INDEXED: for the GROUP BY the planner would rather scan all of reservations_usage than the window's rowids.
  const spent = db
    .prepare<[number, string], { agent: string; tool: string; currency: string; day: string; minor: number }>(
      `SELECT agent, tool, currency, substr(reserved_at, 1, 10) AS day, sum(amount_minor) AS minor
       FROM reservations NOT INDEXED WHERE rowid >= ? AND state = 'spent' AND currency IS NOT NULL AND amount_minor IS NOT NULL AND reserved_at >= ?
       GROUP BY agent, tool, currency, day`,
    )
    .all(firstReservationAtOrAfter(db, since), since);
  const byCurrency = new Map<string, Map<string, { agent: string; tool: string; minor: number[] }>>();
  for (const row of spent) {
    const i = index.get(row.day);
    if (i === undefined) continue;
    const series = byCurrency.get(row.currency) ?? new Map();
    byCurrency.set(row.currency, series);
    const key = `${row.agent} ${row.tool}`;
    const entry = series.get(key) ?? { agent: row.agent, tool: row.tool, minor: days.map(() => 0) };
    entry.minor[i] += row.minor;
    series.set(key, entry);
  }
  const money = [...byCurrency.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([currency, series]) => ({ currency, decimals: currencyDecimals(currency), byAgent: [...series.values()].sort((a, b) => `${a.agent} ${a.tool}`.localeCompare(`${b.agent} ${b.tool}`)) }));

  // Denied decisions from the first row of the window on, by the index of denied decisions.
  const from = firstSeqAtOrAfter(db, since);
  const denials = days.map(() => 0);
  const approvalWaits = days.map(() => 0);
  for (const row of db
    .prepare<[number], { day: string; waits: number; count: number }>(
      "SELECT substr(at, 1, 10) AS day, CASE WHEN reason IN ('approval_required', 'approval_pending') THEN 1 ELSE 0 END AS waits, count(*) AS count FROM audit_log INDEXED BY audit_denied WHERE kind = 'decision' AND decision = 'denied' AND seq >= ? GROUP BY day, waits",
    )
    .all(from)) {
    const i = index.get(row.day);
    if (i !== undefined) (row.waits ? approvalWaits : denials)[i] = row.count;
  }

  const head = db.prepare<[], { seq: number; hash: string; at: string }>('SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1').get();
  // Kept beside its audit event (console.ts), so finding it costs no index on the log, which every row would pay for.
  const verified = db.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'last_chain_verify'").get();
  return {
    days,
    money,
    denials,
    approvalWaits,
    chain: {
      rows: head?.seq ?? 0,
      headHash: head?.hash ?? null,
      headAt: head?.at ?? null,
      lastVerify: verified ? (JSON.parse(verified.value) as { at: string; by: string; result: string }) : null,
    },
  };
}

/**
 * The rowid of the first reservation made at or after `at`, by binary search: reservations are written in the
 * decision's transaction, stamped with the decision row's time, which never goes back (audit-log.ts), and never
 * deleted, so rowid order is time order. The charts then read 30 days of reservations, not all of them.
 */
function firstReservationAtOrAfter(db: SqliteDatabase, at: string): number {
  const bounds = db.prepare<[], { first: number | null; last: number | null }>('SELECT (SELECT min(rowid) FROM reservations) AS first, (SELECT max(rowid) FROM reservations) AS last').get();
  if (!bounds || bounds.first === null || bounds.last === null) return 0;
  const atOrAfter = db.prepare<[number], { rowid: number; reserved_at: string }>('SELECT rowid, reserved_at FROM reservations WHERE rowid >= ? ORDER BY rowid LIMIT 1');
  let low = bounds.first;
  let high = bounds.last + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const row = atOrAfter.get(middle);
    if (row === undefined || row.reserved_at >= at) high = middle;
    else low = middle + 1;
  }
  return low;
}
