/**
 * One call at a time changes what an invoice can be paid with, across every process on the database: two agents
 * replacing the same invoice's link with different amounts must not each archive the old one and make a new one. The
 * row in invoice_locks is the lock; a call waits for it while its holder is alive and still running.
 *
 * The lock also carries a creation that was sent to Mollie but whose answer was never recorded (a timeout, a reset, a
 * crash): its Idempotency-Key and exact request. Whoever takes the lock next repeats that request with that key
 * (Mollie answers with the link it made, or makes it now), so at most one link ever exists for it.
 */
import { immediateWhenFree, isBusy, type SqliteDatabase } from '../database.js';
import type { MollieMode } from '../mollie/port.js';
import { instanceAlive } from '../server-instances.js';
import { ToolError } from '../tool-error.js';

export type PaymentKind = 'payment_link' | 'checkout';

/** A creation sent to Mollie whose answer was not recorded. */
export interface PendingCreation {
  callId: string;
  agent: string;
  kind: PaymentKind;
  idempotencyKey: string;
  /** The exact request body, as sent: Mollie replays only for an identical request. */
  request: unknown;
  /** When it was about to be sent. */
  since: string;
}

interface LockRow {
  invoice_id: string;
  mode: MollieMode;
  call_id: string;
  agent: string;
  instance_id: string;
  taken_at: string;
  state: 'held' | 'left';
  creation_call_id: string | null;
  creation_agent: string | null;
  kind: PaymentKind | null;
  idempotency_key: string | null;
  request: string | null;
  sent_at: string | null;
}

const POLL_MS = 100;
/** Longer than one call's Mollie work usually takes; past it the caller is told to try again. */
export const LOCK_WAIT_MS = 30_000;

export class InvoiceLock {
  private released = false;
  private intent = false;

  constructor(
    private readonly locks: InvoiceLocks,
    readonly invoiceId: string,
    readonly mode: MollieMode,
    readonly callId: string,
    readonly agent: string,
    /** A creation an earlier call left unfinished: to be completed before anything else is done to the invoice. */
    public leftover: PendingCreation | null,
  ) {}

  /** Written, and synced to disk, before the creation is sent, so a crash or a lost answer leaves what to repeat. */
  async recordCreation(kind: PaymentKind, idempotencyKey: string, request: unknown): Promise<void> {
    if (!(await this.locks.setCreation(this, { kind, idempotencyKey, request: JSON.stringify(request) }))) throw this.lost();
    this.intent = true;
  }

  /**
   * Before each write at Mollie: this call still holds the invoice. A holder taken for dead (its host's heartbeat went
   * stale while it was paused) finds its lock gone, and stops before writing anything more.
   */
  assertHeld(): void {
    if (!this.locks.holds(this)) throw this.lost();
  }

  private lost(): ToolError {
    return new ToolError('conflict', `This call lost its turn on invoice ${this.invoiceId} (it was taken for stopped); nothing more was sent to Mollie. Check the invoice with get_payment_status before calling again.`, { retryable: true, field: 'invoice_id' });
  }

  /**
   * The creation's answer is recorded (or it certainly did nothing): nothing is left to repeat. Only noted here; the
   * row goes with release(). Should the process die in between, the next holder repeats the creation with its key
   * and finds it recorded.
   */
  creationSettled(): void {
    this.intent = false;
    this.leftover = null;
  }

  /**
   * Lets the next call in; a creation whose answer is unknown stays with the lock for it to complete. Never throws: a
   * row that could not be freed is this process's and no longer active, so the next call takes it over.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.locks.free(this, this.intent || this.leftover !== null);
  }
}

export class InvoiceLocks {
  /** The calls of this process that hold an invoice now: a row of ours naming another call is a leftover. */
  private readonly active = new Set<string>();
  private readonly select;
  private readonly holder;
  private readonly insert;
  private readonly takeOver;
  private readonly update;
  private readonly remove;
  private readonly leave;

  constructor(
    private readonly db: SqliteDatabase,
    /** This process; its own held locks are alive by definition. */
    private readonly instanceId: string,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.select = db.prepare<[string, string], LockRow>('SELECT * FROM invoice_locks WHERE invoice_id = ? AND mode = ?');
    this.holder = db.prepare<[string, string], { call_id: string; state: string }>('SELECT call_id, state FROM invoice_locks WHERE invoice_id = ? AND mode = ?');
    this.insert = db.prepare(
      "INSERT INTO invoice_locks (invoice_id, mode, call_id, agent, instance_id, taken_at, state) VALUES (@invoice_id, @mode, @call_id, @agent, @instance_id, @taken_at, 'held')",
    );
    this.takeOver = db.prepare(
      "UPDATE invoice_locks SET call_id = @call_id, agent = @agent, instance_id = @instance_id, taken_at = @taken_at, state = 'held' WHERE invoice_id = @invoice_id AND mode = @mode AND call_id = @previous",
    );
    this.update = db.prepare(
      `UPDATE invoice_locks SET creation_call_id = @creation_call_id, creation_agent = @creation_agent, kind = @kind, idempotency_key = @idempotency_key,
         request = @request, sent_at = @sent_at
       WHERE invoice_id = @invoice_id AND mode = @mode AND call_id = @call_id`,
    );
    this.remove = db.prepare<[string, string, string]>('DELETE FROM invoice_locks WHERE invoice_id = ? AND mode = ? AND call_id = ?');
    this.leave = db.prepare<[string, string, string]>("UPDATE invoice_locks SET state = 'left' WHERE invoice_id = ? AND mode = ? AND call_id = ?");
  }

  /** Waits for the invoice's lock (at most `waitMs`), then holds it for this call; conflict if it stays taken. */
  async acquire(invoiceId: string, mode: MollieMode, callId: string, agent: string, waitMs = LOCK_WAIT_MS): Promise<InvoiceLock> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      // Not fsynced on its own: a lock lost to a power cut went with the process that held it.
      // Another process's write lock is waited for off the event loop, within this call's wait for the invoice.
      let attempt: { lock?: InvoiceLock; holder?: LockRow } = {};
      try {
        attempt = await immediateWhenFree(this.db, () => this.tryTake(invoiceId, mode, callId, agent), 'normal', Math.max(0, deadline - Date.now()));
      } catch (error) {
        if (!isBusy(error)) throw error;
      }
      if (attempt.lock) return attempt.lock;
      if (Date.now() >= deadline) {
        const holder = attempt.holder;
        throw new ToolError(
          'conflict',
          `${holder ? `Another call (agent "${holder.agent}", since ${holder.taken_at.slice(11, 19)} UTC)` : 'Another process, holding the database\'s write lock,'} is changing what invoice ${invoiceId} can be paid with right now; nothing was done. Try again in a few seconds.`,
          { retryable: true, field: 'invoice_id' },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** A creation an unfinished call left on this invoice, if any (for start-up reconciliation). */
  pendingCreation(invoiceId: string, mode: MollieMode): PendingCreation | null {
    const row = this.select.get(invoiceId, mode);
    return row ? creationOf(row) : null;
  }

  private tryTake(invoiceId: string, mode: MollieMode, callId: string, agent: string): { lock?: InvoiceLock; holder?: LockRow } {
    const taken_at = this.clock().toISOString();
    const row = this.select.get(invoiceId, mode);
    // Active from the moment the row names it, in the same synchronous step: another call of this process looking in
    // between would take a row of ours that no active call holds for a leftover, and take it over.
    if (!row) {
      this.insert.run({ invoice_id: invoiceId, mode, call_id: callId, agent, instance_id: this.instanceId, taken_at });
      this.active.add(callId);
      return { lock: new InvoiceLock(this, invoiceId, mode, callId, agent, null) };
    }
    if (row.state === 'held' && this.alive(row)) return { holder: row };
    // Its holder finished leaving a creation to complete, or its process is gone: take it over, creation and all.
    this.takeOver.run({ invoice_id: invoiceId, mode, call_id: callId, agent, instance_id: this.instanceId, taken_at, previous: row.call_id });
    this.active.add(callId);
    return { lock: new InvoiceLock(this, invoiceId, mode, callId, agent, creationOf(row)) };
  }

  private alive(row: LockRow): boolean {
    return row.instance_id === this.instanceId ? this.active.has(row.call_id) : instanceAlive(this.db, row.instance_id, this.clock());
  }

  /** Whether this call still holds its invoice. */
  holds(lock: InvoiceLock): boolean {
    const row = this.holder.get(lock.invoiceId, lock.mode);
    return row !== undefined && row.call_id === lock.callId && row.state === 'held';
  }

  /** False when the lock is no longer this call's: then nothing was written. */
  setCreation(lock: InvoiceLock, creation: { kind: PaymentKind; idempotencyKey: string; request: string }): Promise<boolean> {
    return immediateWhenFree(this.db, () => {
      return this.update.run({
        invoice_id: lock.invoiceId,
        mode: lock.mode,
        call_id: lock.callId,
        creation_call_id: lock.callId,
        creation_agent: lock.agent,
        kind: creation.kind,
        idempotency_key: creation.idempotencyKey,
        request: creation.request,
        sent_at: this.clock().toISOString(),
      }).changes === 1;
    }, 'full');
  }

  /** A creation kept for the next holder was synced when it was recorded; the rest need no fsync of their own. */
  async free(lock: InvoiceLock, keepCreation: boolean): Promise<void> {
    this.active.delete(lock.callId);
    try {
      await immediateWhenFree(this.db, () => {
        if (keepCreation) this.leave.run(lock.invoiceId, lock.mode, lock.callId);
        else this.remove.run(lock.invoiceId, lock.mode, lock.callId);
      }, 'normal');
    } catch {
      // The row stays, naming a call this process no longer runs: the next call here, or in any process once this
      // one is gone, takes it over, creation and all.
    }
  }
}

function creationOf(row: LockRow): PendingCreation | null {
  if (row.kind === null || row.idempotency_key === null || row.request === null || row.creation_call_id === null) return null;
  return {
    callId: row.creation_call_id,
    agent: row.creation_agent ?? row.agent,
    kind: row.kind,
    idempotencyKey: row.idempotency_key,
    request: JSON.parse(row.request) as unknown,
    since: row.sent_at ?? row.taken_at,
  };
}
