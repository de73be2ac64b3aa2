/**
 * The one SQLite file this server keeps: the audit log, budget reservations and the local payment records.
 * Several processes share it (every Claude Desktop window starts its own server), so it runs in WAL mode with a busy
 * timeout, and every write that must see the others' writes is a BEGIN IMMEDIATE transaction.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export type SqliteDatabase = Database.Database;
type Statement = Database.Statement;

/**
 * SQLite copies the WAL back into the database inside whichever commit crosses this many pages, and that call waits
 * for the copy and its fsyncs (about 6 ms here). A call writes about 17 pages, so at SQLite's default of 1000 one call
 * in 60 waited, which set the p99 of every tool. At 4000 (a WAL of up to 16 MiB) it is one in 235, and since hot
 * pages are copied once however often they were rewritten, the copying costs less in all. A checkpoint thread was
 * measured too: its fsyncs slowed the calls' own writes as much as the checkpoints it took off them.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 4000;

/** Whether this connection is the PostgreSQL adapter (src/store/postgres/pg-database.ts): no sqlite_master, no file. */
export function isPostgres(db: SqliteDatabase): boolean {
  return (db as unknown as { dialect?: string }).dialect === 'postgres';
}

/** How long a writer waits for another process's transaction before giving up (SQLITE_BUSY). */
export const BUSY_TIMEOUT_MS = 15_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('decision', 'outcome', 'event')),
  at TEXT NOT NULL,
  agent TEXT,
  transport TEXT,
  client_name TEXT,
  tool TEXT,
  arguments TEXT,
  invoice_id TEXT,
  payment_id TEXT,
  refund_id TEXT,
  amount_value TEXT,
  amount_currency TEXT,
  decision TEXT CHECK (decision IN ('allowed', 'denied')),
  reason TEXT,
  reason_message TEXT,
  rule TEXT,
  policy_sha256 TEXT,
  idempotency_key TEXT,
  action TEXT,
  outcome TEXT CHECK (outcome IN ('ok', 'error', 'unknown')),
  error_code TEXT,
  error_message TEXT,
  mollie_error TEXT,
  duration_ms INTEGER,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
-- audit_agent (an agent's decision rows, in seq order) and audit_call (a call's rows; one decision and one outcome
-- each) are created by upgradeIndexes, as their definitions changed.
CREATE INDEX IF NOT EXISTS audit_payment ON audit_log (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_invoice ON audit_log (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_denied ON audit_log (seq) WHERE kind = 'decision' AND decision = 'denied';
-- Outcomes unknown at Mollie (a timeout, a 5xx): few, and what an operator looks for (list_logs outcome: unknown).
CREATE INDEX IF NOT EXISTS audit_unknown ON audit_log (seq) WHERE kind = 'outcome' AND outcome = 'unknown';
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be deleted'); END;
-- INSERT OR REPLACE deletes the old row without firing the delete trigger (recursive_triggers is off): refused here.
CREATE TRIGGER IF NOT EXISTS audit_log_no_replace BEFORE INSERT ON audit_log WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be replaced'); END;
-- A row goes after the last one: none can be slipped in below the chain (seq 0, -1) where audit verify never looks.
CREATE TRIGGER IF NOT EXISTS audit_log_in_order BEFORE INSERT ON audit_log WHEN NEW.seq != (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: a row goes after the last one, with the next seq'); END;

CREATE TABLE IF NOT EXISTS reservations (
  call_id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tool TEXT NOT NULL,
  currency TEXT,
  amount_minor INTEGER,
  reserved_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('reserved', 'spent', 'released', 'unknown')),
  repeat_key TEXT,
  instance_id TEXT
);
CREATE INDEX IF NOT EXISTS reservations_usage ON reservations (agent, tool, currency, reserved_at);

-- Calls that move no money, from their decision row to their outcome row (money-moving calls have a reservation):
-- a restart finds those a stopped process left unfinished. It holds only calls in flight, so it stays a page or two.
CREATE TABLE IF NOT EXISTS open_reads (
  call_id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  opened_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS payments (
  payment_id TEXT PRIMARY KEY,
  invoice_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  mode TEXT NOT NULL,
  amount_value TEXT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  checkout_url TEXT,
  expires_at TEXT,
  paid_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  idempotency_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_invoice ON payments (invoice_id, created_at);

-- The payment links this server made for invoices (0.5). Mollie gives a link no status: status is the one derived
-- from the link and its payments when last read (src/payments/link-status.ts); payment_id the payment that paid it,
-- or the latest attempt. Payments made through a link are rows of payments with its link_id.
CREATE TABLE IF NOT EXISTS payment_links (
  link_id TEXT PRIMARY KEY,
  invoice_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  mode TEXT NOT NULL,
  amount_value TEXT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  url TEXT NOT NULL,
  expires_at TEXT,
  archived INTEGER NOT NULL DEFAULT 0,
  archived_at TEXT,
  paid_at TEXT,
  payment_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  call_id TEXT
);
CREATE INDEX IF NOT EXISTS payment_links_invoice ON payment_links (invoice_id, created_at);

-- One call at a time changes what an invoice can be paid with (create_invoice_payment, cancel_invoice_payment), in
-- any process: the row is the lock. A creation sent to Mollie whose answer is not yet recorded keeps its key and exact
-- request here, so whoever comes next repeats it with the same key instead of making a second link (0.5).
CREATE TABLE IF NOT EXISTS invoice_locks (
  invoice_id TEXT NOT NULL,
  mode TEXT NOT NULL,
  call_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  taken_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('held', 'left')),
  -- The creation waiting to be completed, and the call whose decision allowed it.
  creation_call_id TEXT,
  creation_agent TEXT,
  kind TEXT,
  idempotency_key TEXT,
  request TEXT,
  sent_at TEXT,
  PRIMARY KEY (invoice_id, mode)
) WITHOUT ROWID;

-- The rate limit (0.5): when each call that got past the policy was made, by the real clock, not the log's stamps
-- (which never go back, so a clock stepping back an hour would count an hour of calls as one minute's). Rows older
-- than two minutes are pruned as calls come.
CREATE TABLE IF NOT EXISTS call_times (
  agent TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  call_id TEXT NOT NULL,
  PRIMARY KEY (agent, at_ms, call_id)
) WITHOUT ROWID;

-- Facts about this database file itself (0.5): its id, made once, which signed checkpoints name.
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO store_meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));

CREATE TABLE IF NOT EXISTS server_instances (
  instance_id TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  started_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS approvals (
  approval_id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tool TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  action TEXT NOT NULL,
  amount_value TEXT,
  amount_currency TEXT,
  payment_id TEXT,
  invoice_id TEXT,
  asked_call_id TEXT NOT NULL,
  asked_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'used', 'expired')),
  decided_by TEXT,
  decided_at TEXT,
  used_call_id TEXT,
  used_at TEXT
);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, expires_at);

-- 0.6: each person's yes or no on an approval; approvals_needed different people must say yes.
CREATE TABLE IF NOT EXISTS approval_votes (
  approval_id TEXT NOT NULL,
  person TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
  via TEXT NOT NULL,
  authenticated INTEGER NOT NULL,
  token_sha256 TEXT,
  note TEXT,
  at TEXT NOT NULL,
  PRIMARY KEY (approval_id, person)
) WITHOUT ROWID;

-- 0.8: a question put to the person at a 2026-07-28 client. The call ends asking it ("input required"); the client's
-- repeat of the call carries the answer and this row's token, which counts once.
CREATE TABLE IF NOT EXISTS client_confirmations (
  token_sha256 TEXT PRIMARY KEY,
  call_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  tool TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  asked_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  audit_columns TEXT NOT NULL,
  answer TEXT CHECK (answer IN ('accepted', 'declined', 'canceled', 'no_answer')),
  answered_at TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS client_confirmations_open ON client_confirmations (expires_at) WHERE answered_at IS NULL;
`;

/** Columns added after 0.2.0: a database file written by an older version gains them when it is opened. */
const ADDED_COLUMNS: readonly { table: string; column: string; type: string }[] = [
  { table: 'reservations', column: 'repeat_key', type: 'TEXT' },
  { table: 'reservations', column: 'instance_id', type: 'TEXT' },
  // 0.5: a payment made through one of this server's payment links, and the call that made a checkout or link.
  { table: 'payments', column: 'link_id', type: 'TEXT' },
  { table: 'payments', column: 'call_id', type: 'TEXT' },
  { table: 'payment_links', column: 'call_id', type: 'TEXT' },
  // 0.5: whether a person approved the call (confirm_above counts what went out without one over 24 hours).
  { table: 'reservations', column: 'approved', type: 'INTEGER NOT NULL DEFAULT 0' },
  // 0.6: named approvers: how many must approve, who may, and the rule that asked.
  { table: 'approvals', column: 'approvals_needed', type: 'INTEGER NOT NULL DEFAULT 1' },
  { table: 'approvals', column: 'approvers', type: 'TEXT' },
  { table: 'approvals', column: 'rule', type: 'TEXT' },
];

const INDEXES_ON_ADDED_COLUMNS = `
CREATE INDEX IF NOT EXISTS reservations_repeat ON reservations (repeat_key, reserved_at) WHERE repeat_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS reservations_open ON reservations (state) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS payments_link ON payments (link_id) WHERE link_id IS NOT NULL;
`;

/**
 * Indexes whose definition changed in 0.4.0: created here on a new file, and rebuilt once when a database written by
 * an older version is opened (a few seconds on a log of a million calls). audit_agent now holds decision rows only,
 * since each index a row joins is one more page its commit writes. Two are gone: time ranges are found by binary
 * search on seq (audit_decision_at), and the rate limit counts the log's allowed decisions (reservations_rate).
 */
const CHANGED_INDEXES: readonly { name: string; definition: string; fallback?: string }[] = [
  { name: 'audit_agent', definition: "CREATE INDEX audit_agent ON audit_log (agent, seq) WHERE kind = 'decision'" },
  // 0.5: one decision and one outcome per call, enforced (a call's events may be many). A log written by an older
  // version that already holds a call with two outcomes keeps the plain index; audit verify names such calls.
  {
    name: 'audit_call',
    definition: "CREATE UNIQUE INDEX audit_call ON audit_log (call_id, kind, (CASE WHEN kind = 'event' THEN seq ELSE 0 END))",
    fallback: 'CREATE INDEX audit_call ON audit_log (call_id, kind)',
  },
];
// audit_reason_event: a development build of 0.6 found the console's last verification by it; store_meta holds that now.
const DROPPED_INDEXES = ['audit_decision_at', 'reservations_rate', 'audit_allowed', 'audit_reason_event'];

function upgradeIndexes(db: SqliteDatabase): void {
  const current = db.prepare<[string], { sql: string | null }>("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?");
  for (const { name, definition, fallback } of CHANGED_INDEXES) {
    const existing = current.get(name)?.sql;
    if (existing === definition || (existing !== undefined && existing === fallback)) continue;
    db.exec(`DROP INDEX IF EXISTS ${name}`);
    try {
      db.exec(definition);
    } catch (error) {
      if (fallback === undefined) throw error;
      db.exec(fallback);
    }
  }
  for (const name of DROPPED_INDEXES) db.exec(`DROP INDEX IF EXISTS ${name}`);
}

function addMissingColumns(db: SqliteDatabase): void {
  for (const { table, column, type } of ADDED_COLUMNS) {
    const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
    if (!columns.some((existing) => existing.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }
}

let addonPath: string | null | undefined;

/**
 * Where better-sqlite3's compiled addon is (node-gyp builds it into build/Release, or build/Debug). Named directly,
 * better-sqlite3 neither asks the `bindings` package to try a dozen candidate paths at every start nor needs it to
 * work from inside the bundle; null leaves the search to it.
 */
function nativeBinding(): string | undefined {
  if (addonPath === undefined) {
    const resolve = createRequire(import.meta.url).resolve;
    addonPath = null;
    for (const build of ['Release', 'Debug']) {
      try {
        addonPath = resolve(`better-sqlite3/build/${build}/better_sqlite3.node`);
        break;
      } catch {
        // Not built there.
      }
    }
  }
  return addonPath ?? undefined;
}

/**
 * Switching a new file to WAL needs it to itself for a moment, and SQLite answers SQLITE_BUSY at once rather than wait
 * (its busy handler is not called for this lock): two servers started together on a new file (replicas, two client
 * windows) would have one fail to start. Tried again for up to the busy timeout; a start waits a few ms at most.
 */
function whenNotBusy(work: () => void): void {
  const giveUp = Date.now() + BUSY_TIMEOUT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      work();
      return;
    } catch (error) {
      if (!isBusy(error) || Date.now() >= giveUp) throw error;
      Atomics.wait(pause, 0, 0, wait);
    }
  }
}

export function openDatabase(path: string): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS, nativeBinding: nativeBinding() });
  whenNotBusy(() => db.pragma('journal_mode = WAL'));
  // FULL: a committed audit row survives a power cut, not only a crash of this process.
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  db.pragma('foreign_keys = ON');
  immediate(db, () => {
    db.exec(SCHEMA);
    addMissingColumns(db);
    db.exec(INDEXES_ON_ADDED_COLUMNS);
    upgradeIndexes(db);
  });
  return db;
}

/**
 * The database opened for reading only, as auditors do: nothing is created, upgraded or written, so it works on a
 * file (and folder) only the server's user may write, the setup the README recommends. A log written by an older
 * version is read as it is.
 */
export function openForReading(path: string): SqliteDatabase {
  // Before the addon loads (at the first open in this process), so the fallback below may name the file as a URI.
  process.env.SQLITE_USE_URI ??= '1';
  const open = (name: string): SqliteDatabase => {
    const db = new Database(name, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS, nativeBinding: nativeBinding() });
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Reading the schema opens the WAL index: the place a folder this user cannot write shows.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  };
  try {
    return open(path);
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (!code.startsWith('SQLITE_READONLY') && code !== 'SQLITE_CANTOPEN') throw error;
    // A reader that may not create the WAL index next to a fully written-back file (no -wal: no server has it
    // open): read it as it is on disk. With a -wal there is a server, whose -shm lets readers in, so this is moot.
    if (existsSync(`${path}-wal`)) throw error;
    return open(readOnlyUri(path));
  }
}

/** The file as an immutable database: SQLite reads it without the WAL index or locks. */
export function readOnlyUri(path: string): string {
  return `file:${encodeURI(path).replace(/\?/g, '%3f').replace(/#/g, '%23')}?immutable=1`;
}

/**
 * How hard a commit is pushed to disk. `full`: fsync before the commit returns, so the rows survive a power cut; every
 * call that can move money, and every write not marked otherwise. `normal` (WAL): the commit reaches the operating
 * system before it returns, so it survives a crash of this process, and the disk with the next full commit or
 * checkpoint; a power cut can lose the last such commits, never a money-moving one. Calls that read only use it, which
 * saves an fsync (about 0.3 ms here) per row.
 */
export type Durability = 'full' | 'normal';

interface TransactionControl {
  begin: Statement;
  commit: Statement;
  rollback: Statement;
  syncNormal: Statement;
  syncFull: Statement;
  waitBriefly: Statement;
  waitLong: Statement;
  /** The connection's synchronous setting now; changed only when a transaction needs the other one. */
  mode: Durability | null;
}

const controls = new WeakMap<SqliteDatabase, TransactionControl>();

function controlOf(db: SqliteDatabase): TransactionControl {
  let control = controls.get(db);
  if (!control) {
    const current = db.pragma('synchronous', { simple: true }) as number;
    control = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
      syncFull: db.prepare('PRAGMA synchronous = FULL'),
      waitBriefly: db.prepare(`PRAGMA busy_timeout = ${ATTEMPT_WAIT_MS}`),
      waitLong: db.prepare(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`),
      mode: current === 2 ? 'full' : current === 1 ? 'normal' : null,
    };
    controls.set(db, control);
  }
  return control;
}

/**
 * Runs `work` in a BEGIN IMMEDIATE transaction: the write lock is taken first, so a read-then-write cannot race.
 * Inside a transaction already, `work` joins it: it commits or rolls back with the caller's work, all or nothing.
 *
 * The connection keeps the durability of its last transaction until one needs the other: two PRAGMA statements fewer
 * for each transaction of a run of read-only calls. A write outside any transaction (a tool storing its payment
 * record, a heartbeat) therefore gets the durability of the connection's last transaction. That is safe because a
 * money-moving call writes its outcome row after it, at `full`, and that fsync takes every earlier WAL frame to disk
 * too; a write that must survive a power cut on its own goes through immediate(..., 'full'), as every money-moving
 * row, approval and audit append does.
 */
export function immediate<T>(db: SqliteDatabase, work: () => T, durability: Durability = 'full'): T {
  if (db.inTransaction) return work();
  const control = controlOf(db);
  if (control.mode !== durability) {
    (durability === 'normal' ? control.syncNormal : control.syncFull).run();
    control.mode = durability;
  }
  control.begin.run();
  try {
    const result = work();
    control.commit.run();
    return result;
  } catch (error) {
    if (db.inTransaction) control.rollback.run();
    throw error;
  }
}

/** How long one attempt at the write lock may hold the event loop, in immediateWhenFree. */
const ATTEMPT_WAIT_MS = 25;

/**
 * "Another connection holds the lock", in any of its variants: SQLite's, and PostgreSQL's lock_not_available (the
 * write lock not free within lock_timeout), deadlock and serialization failure, after which the transaction can run
 * again from the start.
 */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED' || code === '55P03' || code === '40001' || code === '40P01');
}

/**
 * immediate(), for a server answering many requests: while another process holds the write lock, it waits between
 * short attempts without holding the event loop, so health checks, other sessions and heartbeats are answered
 * meanwhile (better-sqlite3 would wait synchronously, up to the whole busy timeout). Gives up with SQLITE_BUSY after
 * `deadlineMs`, as immediate() does after the busy timeout. `work` must only touch the database: it may run again.
 */
export async function immediateWhenFree<T>(db: SqliteDatabase, work: () => T, durability: Durability = 'full', deadlineMs = BUSY_TIMEOUT_MS): Promise<T> {
  if (db.inTransaction) return work();
  const control = controlOf(db);
  const giveUp = Date.now() + deadlineMs;
  let pause = 5;
  for (;;) {
    control.waitBriefly.get();
    try {
      return immediate(db, work, durability);
    } catch (error) {
      if (!isBusy(error) || Date.now() >= giveUp) throw error;
    } finally {
      control.waitLong.get();
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(pause, giveUp - Date.now()))));
    pause = Math.min(pause * 2, 100);
  }
}

/** One write that may be skipped: tried once without waiting for another process's lock; false if it was held. */
export function writeIfFree(db: SqliteDatabase, work: () => void): boolean {
  const control = controlOf(db);
  control.waitBriefly.get();
  try {
    work();
    return true;
  } catch (error) {
    if (isBusy(error)) return false;
    throw error;
  } finally {
    control.waitLong.get();
  }
}

/** Where the database lives when MOLLIE_MCP_DB is not set: the user's state directory. */
export function defaultDatabasePath(
  env: Readonly<Record<string, string | undefined>>,
  simulator = false,
  platform: NodeJS.Platform = process.platform,
): string {
  const home = env.HOME ?? homedir();
  // The simulator's payments are not Mollie's; its records must not mix with those of real Mollie payments.
  const file = simulator ? 'mollie-invoice-mcp-simulator.db' : 'mollie-invoice-mcp.db';
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'mollie-invoice-mcp', file);
  if (platform === 'win32') return join(env.LOCALAPPDATA ?? join(home, 'AppData', 'Local'), 'mollie-invoice-mcp', file);
  return join(env.XDG_STATE_HOME ?? join(home, '.local', 'state'), 'mollie-invoice-mcp', file);
}
