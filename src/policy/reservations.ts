/**
 * Budget reservations: each allowed call that can move money reserves its amount in the same BEGIN IMMEDIATE
 * transaction that checked the caps, so no two calls (in one process or many) can both fit under the last euro of a
 * cap. A definite failure releases the reservation; an unknown outcome keeps it (the money may have moved).
 */
import type { SqliteDatabase } from '../database.js';
import type { UsageReader } from './decide.js';

export type ReservationState = 'reserved' | 'spent' | 'released' | 'unknown';

/** An earlier call that did the same thing (same repeat key), with what became of it. */
export interface RepeatRow {
  call_id: string;
  agent: string;
  reserved_at: string;
  state: ReservationState;
  refund_id: string | null;
  outcome: 'ok' | 'error' | 'unknown' | null;
}

export class Reservations implements Pick<UsageReader, 'reservedSince' | 'unapprovedSince'> {
  private readonly sumReserved;
  private readonly sumUnapproved;
  private readonly insert;
  private readonly setState;
  private readonly repeats;

  constructor(db: SqliteDatabase) {
    this.sumUnapproved = db.prepare<[string, string, string, string], { minor: number | null }>(
      `SELECT sum(amount_minor) AS minor FROM reservations
       WHERE agent = ? AND tool = ? AND currency = ? AND reserved_at >= ? AND state != 'released' AND approved = 0`,
    );
    this.sumReserved = db.prepare<[string, string, string, string], { minor: number | null; n: number }>(
      `SELECT sum(amount_minor) AS minor, count(*) AS n FROM reservations
       WHERE agent = ? AND tool = ? AND currency = ? AND reserved_at >= ? AND state != 'released'`,
    );
    this.insert = db.prepare(
      `INSERT INTO reservations (call_id, agent, tool, currency, amount_minor, reserved_at, state, repeat_key, instance_id, approved)
       VALUES (@call_id, @agent, @tool, @currency, @amount_minor, @reserved_at, 'reserved', @repeat_key, @instance_id, @approved)`,
    );
    this.repeats = db.prepare<[string, string], RepeatRow>(
      `SELECT r.call_id, r.agent, r.reserved_at, r.state, o.refund_id, o.outcome
       FROM reservations r LEFT JOIN audit_log o ON o.call_id = r.call_id AND o.kind = 'outcome'
       WHERE r.repeat_key = ? AND r.reserved_at >= ? AND r.state != 'released'
       ORDER BY r.reserved_at DESC LIMIT 1`,
    );
    this.setState = db.prepare<[ReservationState, string]>("UPDATE reservations SET state = ? WHERE call_id = ? AND state IN ('reserved', 'unknown')");
  }

  unapprovedSince(agent: string, tool: string, currency: string, sinceIso: string): number {
    return this.sumUnapproved.get(agent, tool, currency, sinceIso)?.minor ?? 0;
  }

  reservedSince(agent: string, tool: string, currency: string, sinceIso: string): { minor: number; count: number } {
    const row = this.sumReserved.get(agent, tool, currency, sinceIso);
    return { minor: row?.minor ?? 0, count: row?.n ?? 0 };
  }

  /** The latest call with this repeat key since `sinceIso` that did not definitely fail; joins the caller's transaction. */
  latestRepeat(repeatKey: string, sinceIso: string): RepeatRow | null {
    return this.repeats.get(repeatKey, sinceIso) ?? null;
  }

  reserve(entry: { callId: string; agent: string; tool: string; money: { minor: number; currency: string } | null; at: string; repeatKey?: string | null; instanceId?: string | null; approved?: boolean }): void {
    this.insert.run({
      approved: entry.approved === true ? 1 : 0,
      repeat_key: entry.repeatKey ?? null,
      instance_id: entry.instanceId ?? null,
      call_id: entry.callId,
      agent: entry.agent,
      tool: entry.tool,
      currency: entry.money?.currency ?? null,
      amount_minor: entry.money?.minor ?? null,
      reserved_at: entry.at,
    });
  }

  settle(callId: string, state: Exclude<ReservationState, 'reserved'>): void {
    this.setState.run(state, callId);
  }
}
