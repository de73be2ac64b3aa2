/**
 * The rate limit's count: when each call that got past the policy was made, by the real clock. The audit log's own
 * stamps never go back (rows are stamped in order), so after the clock stepped back an hour every new row would carry
 * the same old time and count as made within the minute: the agent would be locked out for that hour. Here only what
 * lies in the real last minute counts; what lies in its future (a clock that went back) does not.
 */
import type { SqliteDatabase } from '../database.js';

const WINDOW_MS = 60_000;
const KEEP_MS = 2 * WINDOW_MS;
/** Pruning is one indexed range delete per agent; doing it every so many calls keeps the table a few pages. */
const PRUNE_EVERY = 256;

export class CallTimes {
  private readonly countStatement;
  private readonly ownStatement;
  private readonly insert;
  private readonly prune;
  private readonly forget;
  private sincePrune = 0;

  constructor(db: SqliteDatabase) {
    this.countStatement = db.prepare<[string, number, number], { n: number }>('SELECT count(*) AS n FROM call_times WHERE agent = ? AND at_ms > ? AND at_ms <= ?');
    this.ownStatement = db.prepare<[string, number, number, string], { n: number }>('SELECT count(*) AS n FROM call_times WHERE agent = ? AND at_ms > ? AND at_ms <= ? AND call_id = ?');
    this.insert = db.prepare<[string, number, string]>('INSERT OR IGNORE INTO call_times (agent, at_ms, call_id) VALUES (?, ?, ?)');
    this.prune = db.prepare<[number]>('DELETE FROM call_times WHERE at_ms < ?');
    this.forget = db.prepare<[string, string]>('DELETE FROM call_times WHERE agent = ? AND call_id = ?');
  }

  /** Calls of this agent in the minute before `now`, but for the call `except` (itself, asking again). */
  recentCalls(agent: string, now: Date, except?: string): number {
    const at = now.getTime();
    const all = this.countStatement.get(agent, at - WINDOW_MS, at)?.n ?? 0;
    return except === undefined ? all : all - (this.ownStatement.get(agent, at - WINDOW_MS, at, except)?.n ?? 0);
  }

  /**
   * A call that asked a person and now goes on (the repeat with the answer) counts when it is decided: its mark from
   * the question moves to now. Joins the caller's transaction.
   */
  restamp(agent: string, callId: string, now: Date): void {
    this.forget.run(agent, callId);
    this.insert.run(agent, now.getTime(), callId);
  }

  /** Joins the caller's transaction: the call's decision. */
  record(agent: string, callId: string, now: Date): void {
    const at = now.getTime();
    this.insert.run(agent, at, callId);
    if ((this.sincePrune += 1) >= PRUNE_EVERY) {
      this.sincePrune = 0;
      this.prune.run(at - KEEP_MS);
    }
  }
}
