/**
 * The storage port: what the server keeps, behind one interface with two adapters (src/store/sqlite-store.ts, the
 * embedded default; src/store/postgres/postgres-store.ts, the shared store for several replicas). Callers see
 * transactions of domain operations, never SQL, so they do not know which engine they talk to.
 *
 * A transaction's work must touch only the transaction (no Mollie call, no timer): on PostgreSQL it runs again after
 * a serialization failure or deadlock, and on SQLite it holds the file's write lock.
 */
import type { AppendFields, AuditRow, VerifyResult } from '../audit/audit-log.js';
import type { ReservationState } from '../policy/reservations.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface ReservationEntry {
  callId: string;
  agent: string;
  tool: string;
  money: { minor: number; currency: string } | null;
  at: string;
  repeatKey?: string | null;
  instanceId?: string | null;
  approved?: boolean;
}

export interface StoreTransaction {
  /** Appends one row to the hash chain, after whatever any writer anywhere appended last. */
  append(fields: AppendFields): Promise<AuditRow>;
  /**
   * Holds one budget (agent, tool, currency) until the transaction ends: whoever checks the same budget next waits,
   * then sees this transaction's reservation. Take it before reading what the budget has used.
   */
  lockBudget(agent: string, tool: string, currency: string): Promise<void>;
  /** Reservations of this budget since then that did not definitely fail: their sum and count. */
  reservedSince(agent: string, tool: string, currency: string, sinceIso: string): Promise<{ minor: number; count: number }>;
  /** What went out of this budget since then without a person's approval. */
  unapprovedSince(agent: string, tool: string, currency: string, sinceIso: string): Promise<number>;
  reserve(entry: ReservationEntry): Promise<void>;
  settle(callId: string, state: Exclude<ReservationState, 'reserved'>): Promise<void>;
}

export interface ChainHead {
  rows: number;
  hash: string;
}

export interface Store {
  readonly kind: StoreKind;
  /** Where the store is, fit to show: a file path, or user@host:port/database with no password. */
  readonly described: string;
  /** Runs `work` as one transaction: all of it commits or none. */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  head(): Promise<ChainHead>;
  /** Recomputes the whole chain from the first row; reports the first row that does not fit. */
  verify(): Promise<VerifyResult>;
  /** The log's rows in seq order, from `fromSeq`. */
  rows(fromSeq?: number): AsyncIterable<AuditRow>;
  /** The id this store was given when it was created, which signed checkpoints name. */
  databaseId(): Promise<string>;
  close(): Promise<void>;
}
