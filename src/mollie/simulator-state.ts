/**
 * Where the simulator keeps what Mollie would keep: payments with their refunds, payment links, and the answers to
 * Idempotency-Keys. In memory for tests and the demo; in the server's database file for `serve --simulator` and
 * `simulate`, so every process on that file (two client entries, a client that starts a server per call, a restart)
 * sees one simulated Mollie, as they would share the real one.
 */
import { immediate, isPostgres, type SqliteDatabase } from '../database.js';
import type { Payment, PaymentLink, Refund } from './port.js';

/** Mollie keeps an Idempotency-Key's answer this long, then treats the key as new. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface StoredPayment {
  payment: Payment;
  refunds: Refund[];
  /** The link it was paid through: known to Mollie, never shown on the payment. */
  linkId: string | null;
}

export interface StoredLink {
  link: PaymentLink;
  /** Payments made through it, oldest first. */
  paymentIds: string[];
}

export interface IdempotentReply {
  fingerprint: string;
  reply: Payment | Refund | PaymentLink;
  at: number;
}

/**
 * The objects handed out are live: the simulator changes them in place, and within atomically() every change is kept
 * when the work returns (all of it, or none when it throws).
 */
export interface SimulatorState {
  atomically<T>(work: () => T): T;
  payment(id: string): StoredPayment | undefined;
  addPayment(stored: StoredPayment): void;
  /** Ids of payments made at or after `sinceMs`, newest first, at most `limit`. */
  paymentIds(sinceMs: number, limit: number): string[];
  link(id: string): StoredLink | undefined;
  addLink(stored: StoredLink): void;
  removeLink(id: string): void;
  linkIds(sinceMs: number, limit: number): string[];
  refundOwner(refundId: string): string | undefined;
  addRefund(refundId: string, paymentId: string): void;
  reply(key: string): IdempotentReply | undefined;
  putReply(key: string, reply: IdempotentReply): void;
}

export class MemorySimulatorState implements SimulatorState {
  private readonly payments = new Map<string, StoredPayment>();
  private readonly links = new Map<string, StoredLink>();
  private readonly refundOwners = new Map<string, string>();
  private readonly replies = new Map<string, IdempotentReply>();

  atomically<T>(work: () => T): T {
    return work();
  }
  payment(id: string): StoredPayment | undefined {
    return this.payments.get(id);
  }
  addPayment(stored: StoredPayment): void {
    this.payments.set(stored.payment.id, stored);
  }
  paymentIds(sinceMs: number, limit: number): string[] {
    return newestIds([...this.payments.values()].map((stored) => stored.payment), sinceMs, limit);
  }
  link(id: string): StoredLink | undefined {
    return this.links.get(id);
  }
  addLink(stored: StoredLink): void {
    this.links.set(stored.link.id, stored);
  }
  removeLink(id: string): void {
    this.links.delete(id);
  }
  linkIds(sinceMs: number, limit: number): string[] {
    return newestIds([...this.links.values()].map((stored) => stored.link), sinceMs, limit);
  }
  refundOwner(refundId: string): string | undefined {
    return this.refundOwners.get(refundId);
  }
  addRefund(refundId: string, paymentId: string): void {
    this.refundOwners.set(refundId, paymentId);
  }
  reply(key: string): IdempotentReply | undefined {
    return this.replies.get(key);
  }
  putReply(key: string, reply: IdempotentReply): void {
    this.replies.set(key, reply);
  }
}

function newestIds(all: { id: string; createdAt: string }[], sinceMs: number, limit: number): string[] {
  const ids: string[] = [];
  for (let index = all.length - 1; index >= 0 && ids.length < limit; index -= 1) {
    if (Date.parse(all[index]!.createdAt) >= sinceMs) ids.push(all[index]!.id);
  }
  return ids;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS simulator_payments (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS simulator_links (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS simulator_refunds (id TEXT PRIMARY KEY, payment_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS simulator_replies (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, reply TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS simulator_replies_at ON simulator_replies (at);
`;

interface Loaded {
  table: 'simulator_payments' | 'simulator_links';
  value: StoredPayment | StoredLink;
  saved: string;
}

/**
 * The simulator's tables in the server's database. Each operation is one write transaction: objects read during it
 * are written back at its end if they changed, so a payment paid through one process's checkout page is paid for
 * every other process at once.
 */
export class SqliteSimulatorState implements SimulatorState {
  private unit: Map<string, Loaded> | null = null;

  constructor(private readonly db: SqliteDatabase) {
    // Created once per file: every later start only reads that they are there (no write, no fsync).
    // On PostgreSQL the schema's migrations made them.
    if (isPostgres(db)) return;
    const present = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name LIKE 'simulator\\_%' ESCAPE '\\'").get() as { n: number };
    if (present.n < 4) immediate(db, () => db.exec(SCHEMA));
  }

  atomically<T>(work: () => T): T {
    if (this.unit !== null) return work();
    // 'normal': a simulated Mollie's state survives a crash of this process; it is not the audit log.
    return immediate(
      this.db,
      () => {
        this.unit = new Map();
        try {
          const result = work();
          this.writeBack(this.unit);
          return result;
        } finally {
          this.unit = null;
        }
      },
      'normal',
    );
  }

  payment(id: string): StoredPayment | undefined {
    return this.load('simulator_payments', id) as StoredPayment | undefined;
  }
  addPayment(stored: StoredPayment): void {
    this.insert('simulator_payments', stored.payment.id, stored.payment.createdAt, stored);
  }
  paymentIds(sinceMs: number, limit: number): string[] {
    return this.ids('simulator_payments', sinceMs, limit);
  }
  link(id: string): StoredLink | undefined {
    return this.load('simulator_links', id) as StoredLink | undefined;
  }
  addLink(stored: StoredLink): void {
    this.insert('simulator_links', stored.link.id, stored.link.createdAt, stored);
  }
  removeLink(id: string): void {
    this.inUnit().delete(id);
    this.db.prepare('DELETE FROM simulator_links WHERE id = ?').run(id);
  }
  linkIds(sinceMs: number, limit: number): string[] {
    return this.ids('simulator_links', sinceMs, limit);
  }
  refundOwner(refundId: string): string | undefined {
    const row = this.db.prepare('SELECT payment_id FROM simulator_refunds WHERE id = ?').get(refundId) as { payment_id: string } | undefined;
    return row?.payment_id;
  }
  addRefund(refundId: string, paymentId: string): void {
    this.inUnit();
    this.db.prepare('INSERT INTO simulator_refunds (id, payment_id) VALUES (?, ?)').run(refundId, paymentId);
  }
  reply(key: string): IdempotentReply | undefined {
    const row = this.db.prepare('SELECT fingerprint, reply, at FROM simulator_replies WHERE key = ?').get(key) as
      | { fingerprint: string; reply: string; at: number }
      | undefined;
    return row ? { fingerprint: row.fingerprint, reply: JSON.parse(row.reply) as IdempotentReply['reply'], at: row.at } : undefined;
  }
  putReply(key: string, reply: IdempotentReply): void {
    this.inUnit();
    // Answers past Mollie's window are never replayed again: a saved state that lives for months does not keep them.
    this.db.prepare('DELETE FROM simulator_replies WHERE at < ?').run(reply.at - IDEMPOTENCY_WINDOW_MS);
    this.db
      .prepare('INSERT INTO simulator_replies (key, fingerprint, reply, at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, reply = excluded.reply, at = excluded.at')
      .run(key, reply.fingerprint, JSON.stringify(reply.reply), reply.at);
  }

  private inUnit(): Map<string, Loaded> {
    if (this.unit === null) throw new Error('The simulator changed its saved state outside atomically().');
    return this.unit;
  }

  private load(table: Loaded['table'], id: string): StoredPayment | StoredLink | undefined {
    const unit = this.inUnit();
    const known = unit.get(id);
    if (known) return known.value;
    const row = this.db.prepare(`SELECT body FROM ${table} WHERE id = ?`).get(id) as { body: string } | undefined;
    if (!row) return undefined;
    const value = JSON.parse(row.body) as StoredPayment | StoredLink;
    unit.set(id, { table, value, saved: row.body });
    return value;
  }

  private insert(table: Loaded['table'], id: string, createdAt: string, value: StoredPayment | StoredLink): void {
    const body = JSON.stringify(value);
    this.db.prepare(`INSERT INTO ${table} (id, created_ms, body) VALUES (?, ?, ?)`).run(id, Date.parse(createdAt), body);
    this.inUnit().set(id, { table, value, saved: body });
  }

  private ids(table: Loaded['table'], sinceMs: number, limit: number): string[] {
    const rows = this.db.prepare(`SELECT id FROM ${table} WHERE created_ms >= ? ORDER BY seq DESC LIMIT ?`).all(sinceMs, limit) as { id: string }[];
    return rows.map((row) => row.id);
  }

  private writeBack(unit: Map<string, Loaded>): void {
    for (const [id, loaded] of unit) {
      const body = JSON.stringify(loaded.value);
      if (body !== loaded.saved) this.db.prepare(`UPDATE ${loaded.table} SET body = ? WHERE id = ?`).run(body, id);
    }
  }
}
