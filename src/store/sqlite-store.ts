/**
 * The storage port on one SQLite file: today's tables and classes, behind the port. A transaction is BEGIN IMMEDIATE:
 * the file's write lock is the budget lock and the chain head at once, so lockBudget has nothing more to do. Waiting
 * for another process's lock happens between short attempts, without holding the event loop.
 */
import { AuditLog, verifyChain, AUDIT_COLUMNS, type AuditRow, type VerifyResult } from '../audit/audit-log.js';
import { isBusy, openDatabase, type SqliteDatabase, BUSY_TIMEOUT_MS } from '../database.js';
import { Reservations } from '../policy/reservations.js';
import type { ChainHead, Store, StoreTransaction } from './store.js';

const ATTEMPT_WAIT_MS = 25;

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly audit: AuditLog;
  private readonly reservations: Reservations;
  /** One transaction at a time on this connection: another would join it. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly tx: StoreTransaction;

  constructor(
    readonly db: SqliteDatabase,
    readonly described: string,
    clock: () => Date = () => new Date(),
  ) {
    this.audit = new AuditLog(db, clock);
    this.reservations = new Reservations(db);
    const { audit, reservations } = this;
    this.tx = {
      append: async (fields) => audit.append(fields),
      lockBudget: async () => undefined,
      reservedSince: async (agent, tool, currency, since) => reservations.reservedSince(agent, tool, currency, since),
      unapprovedSince: async (agent, tool, currency, since) => reservations.unapprovedSince(agent, tool, currency, since),
      reserve: async (entry) => reservations.reserve(entry),
      settle: async (callId, state) => reservations.settle(callId, state),
    };
  }

  static open(path: string, clock?: () => Date): SqliteStore {
    return new SqliteStore(openDatabase(path), path, clock);
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const run = this.queue.then(() => this.inTransaction(work));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async inTransaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    await this.begin();
    try {
      const result = await work(this.tx);
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  private async begin(): Promise<void> {
    const giveUp = Date.now() + BUSY_TIMEOUT_MS;
    let pause = 5;
    for (;;) {
      this.db.pragma(`busy_timeout = ${ATTEMPT_WAIT_MS}`);
      try {
        this.db.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        if (!isBusy(error) || Date.now() >= giveUp) throw error;
      } finally {
        this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 100);
    }
  }

  async head(): Promise<ChainHead> {
    const last = this.db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get();
    return { rows: last?.seq ?? 0, hash: last?.hash ?? '0'.repeat(64) };
  }

  async verify(): Promise<VerifyResult> {
    return verifyChain(this.db);
  }

  async *rows(fromSeq = 1): AsyncIterable<AuditRow> {
    yield* this.db.prepare<[number], AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log WHERE seq >= ? ORDER BY seq`).iterate(fromSeq);
  }

  async databaseId(): Promise<string> {
    return this.db.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'database_id'").get()!.value;
  }

  async close(): Promise<void> {
    await this.queue;
    this.db.close();
  }
}
