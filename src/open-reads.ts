/**
 * Calls that move no money, between their decision row and their outcome row. They need no budget reservation, but a
 * restart must still find the ones a stopped process left without an outcome (reconcile.ts), as it finds money-moving
 * calls by their reservations. One small row in, the same row out: the table holds only calls in flight.
 */
import type { SqliteDatabase } from './database.js';

export interface OpenRead {
  call_id: string;
  instance_id: string;
  opened_at: string;
}

export class OpenReads {
  private readonly insert;
  private readonly remove;
  private readonly everything;

  constructor(db: SqliteDatabase) {
    this.insert = db.prepare<[string, string, string]>('INSERT INTO open_reads (call_id, instance_id, opened_at) VALUES (?, ?, ?)');
    this.remove = db.prepare<[string]>('DELETE FROM open_reads WHERE call_id = ?');
    this.everything = db.prepare<[], OpenRead>('SELECT call_id, instance_id, opened_at FROM open_reads ORDER BY opened_at');
  }

  /** Joins the caller's transaction: the decision row's. */
  open(callId: string, instanceId: string, at: string): void {
    this.insert.run(callId, instanceId, at);
  }

  /** Joins the caller's transaction: the outcome row's. True if the call was still open. */
  close(callId: string): boolean {
    return this.remove.run(callId).changes > 0;
  }

  all(): OpenRead[] {
    return this.everything.all();
  }
}
