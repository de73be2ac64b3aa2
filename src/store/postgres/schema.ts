/**
 * The PostgreSQL schema, as numbered migrations. Each runs once, in order, inside one transaction that first takes a
 * transaction-scoped advisory lock, so replicas starting together on an empty database queue up: the first creates
 * everything, the others find schema_version current. The lock is taken before anything is read and every statement
 * under READ COMMITTED reads afresh, so nobody acts on a version read before the lock.
 *
 * The columns and their meaning are SQLite's (src/database.ts): `db copy` moves rows across unchanged, and a row's
 * hash is the same on both stores. Times stay ISO-8601 text, as hashed.
 */
import type { ClientBase } from 'pg';
import { GENESIS_HASH } from '../../audit/audit-log.js';

/** pg_advisory_xact_lock key for migrations: "mim" and a version-independent tag. */
const MIGRATION_LOCK = 0x6d696d01;

interface Migration {
  version: number;
  description: string;
  sql: string;
}

const REFUSE_CHANGE = `
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: rows cannot be %',
    CASE TG_OP WHEN 'UPDATE' THEN 'changed' WHEN 'DELETE' THEN 'deleted' ELSE 'truncated' END
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- A row goes after the last one and names its hash: a writer that did not hold the chain head cannot slip one in.
-- Two such writers racing both pass this check, and the second then fails on the unique seq and prev_hash.
CREATE FUNCTION audit_log_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last_seq BIGINT; last_hash TEXT;
BEGIN
  SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
  IF NEW.seq IS DISTINCT FROM coalesce(last_seq, 0) + 1 THEN
    RAISE EXCEPTION 'the audit log is append-only: a row goes after the last one, with the next seq (% expected, % given)', coalesce(last_seq, 0) + 1, NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.prev_hash IS DISTINCT FROM coalesce(last_hash, '${GENESIS_HASH}') THEN
    RAISE EXCEPTION 'the audit log is a chain: a row''s prev_hash is the hash of the row before it'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_log_in_order BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_in_order();

-- The head moves once per INSERT statement, to its last row: one update of the head row for a call's row, and one
-- per batch when db copy moves a log in (per row, a million updates of one row in one transaction would crawl).
CREATE FUNCTION audit_chain_advance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE audit_chain_head SET (seq, hash, at) = (SELECT seq, hash, at FROM inserted ORDER BY seq DESC LIMIT 1)
    WHERE EXISTS (SELECT 1 FROM inserted);
  RETURN NULL;
END $$;
CREATE TRIGGER audit_chain_advance AFTER INSERT ON audit_log REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_advance();
`;

/** Text compares and sorts byte by byte, as in SQLite, whatever the database's own collation. */
function textInCollationC(sql: string): string {
  return sql.replace(/\bTEXT\b/g, 'TEXT COLLATE "C"');
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'audit log and chain head, reservations, payments, links, invoice locks, approvals, instances, simulator state',
    sql: textInCollationC(`
CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY CHECK (seq >= 1),
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
  duration_ms DOUBLE PRECISION,
  prev_hash TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_agent ON audit_log (agent, seq) WHERE kind = 'decision';
CREATE UNIQUE INDEX audit_call ON audit_log (call_id, kind, (CASE WHEN kind = 'event' THEN seq ELSE 0 END));
CREATE INDEX audit_payment ON audit_log (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX audit_invoice ON audit_log (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE INDEX audit_denied ON audit_log (seq) WHERE kind = 'decision' AND decision = 'denied';
CREATE INDEX audit_unknown ON audit_log (seq) WHERE kind = 'outcome' AND outcome = 'unknown';

-- The chain's last row, one row in all. It is also the store's write lock: every write transaction (BEGIN IMMEDIATE in
-- src/store/postgres/pg-database.ts) locks it FOR UPDATE first, so writers from every replica go one at a time and
-- each reads what its predecessors committed, the budgets' reservations and the chain's head among them.
CREATE TABLE audit_chain_head (
  only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL,
  at TEXT
);
INSERT INTO audit_chain_head (seq, hash, at) VALUES (0, '${GENESIS_HASH}', NULL);
`) + REFUSE_CHANGE + textInCollationC(`

CREATE TABLE reservations (
  rowid BIGSERIAL UNIQUE,
  call_id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  tool TEXT NOT NULL,
  currency TEXT,
  amount_minor BIGINT,
  reserved_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('reserved', 'spent', 'released', 'unknown')),
  repeat_key TEXT,
  instance_id TEXT,
  approved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reservations_usage ON reservations (agent, tool, currency, reserved_at);
CREATE INDEX reservations_repeat ON reservations (repeat_key, reserved_at) WHERE repeat_key IS NOT NULL;
CREATE INDEX reservations_open ON reservations (state) WHERE state = 'reserved';

CREATE TABLE open_reads (
  call_id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  opened_at TEXT NOT NULL
);

CREATE TABLE payments (
  rowid BIGSERIAL UNIQUE,
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
  idempotency_key TEXT NOT NULL,
  link_id TEXT,
  call_id TEXT
);
CREATE INDEX payments_invoice ON payments (invoice_id, created_at);
CREATE INDEX payments_link ON payments (link_id) WHERE link_id IS NOT NULL;

CREATE TABLE payment_links (
  rowid BIGSERIAL UNIQUE,
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
CREATE INDEX payment_links_invoice ON payment_links (invoice_id, created_at);

CREATE TABLE invoice_locks (
  invoice_id TEXT NOT NULL,
  mode TEXT NOT NULL,
  call_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  taken_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('held', 'left')),
  creation_call_id TEXT,
  creation_agent TEXT,
  kind TEXT,
  idempotency_key TEXT,
  request TEXT,
  sent_at TEXT,
  PRIMARY KEY (invoice_id, mode)
);

CREATE TABLE call_times (
  agent TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  call_id TEXT NOT NULL,
  PRIMARY KEY (agent, at_ms, call_id)
);

CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO store_meta (key, value) VALUES ('database_id', replace(gen_random_uuid()::text, '-', ''));

CREATE TABLE server_instances (
  instance_id TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  started_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL
);

CREATE TABLE approvals (
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
  used_at TEXT,
  approvals_needed INTEGER NOT NULL DEFAULT 1,
  approvers TEXT,
  rule TEXT
);
CREATE INDEX approvals_state ON approvals (state, expires_at);

CREATE TABLE approval_votes (
  approval_id TEXT NOT NULL,
  person TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
  via TEXT NOT NULL,
  authenticated INTEGER NOT NULL,
  token_sha256 TEXT,
  note TEXT,
  at TEXT NOT NULL,
  PRIMARY KEY (approval_id, person)
);

-- The simulator's saved state (src/mollie/simulator-state.ts), for \`serve --simulator\` on this store.
CREATE TABLE simulator_payments (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL, body TEXT NOT NULL);
CREATE TABLE simulator_links (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL, body TEXT NOT NULL);
CREATE TABLE simulator_refunds (id TEXT PRIMARY KEY, payment_id TEXT NOT NULL);
CREATE TABLE simulator_replies (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, reply TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX simulator_replies_at ON simulator_replies (at);
`),
  },
  {
    version: 2,
    description: 'questions put to the person at a 2026-07-28 client, answered by the repeat of the call (0.8)',
    sql: textInCollationC(`
CREATE TABLE client_confirmations (
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
);
CREATE INDEX client_confirmations_open ON client_confirmations (expires_at) WHERE answered_at IS NULL;
-- The roles that already serve from this database (granted by db migrate --grant-to) may use the new table too.
DO $$ DECLARE serving record; BEGIN
  FOR serving IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
                 WHERE table_schema = 'public' AND table_name = 'audit_log' AND privilege_type = 'INSERT' AND grantee <> current_user LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON client_confirmations TO %I', serving.grantee);
  END LOOP;
END $$;
`),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Tables the server's role may read and add to but never change: the log itself. */
const APPEND_ONLY = ['audit_log'];
/** Tables the server's role reads and writes. */
const WORKING = [
  'audit_chain_head', 'reservations', 'open_reads', 'payments', 'payment_links', 'invoice_locks', 'call_times', 'store_meta',
  'server_instances', 'approvals', 'approval_votes', 'client_confirmations', 'simulator_payments', 'simulator_links', 'simulator_refunds', 'simulator_replies',
];

/**
 * What a server role needs and no more: it owns nothing (so it can neither drop the log's triggers nor alter its
 * table), may add rows to the log but not change, delete or truncate them, and only reads the schema's version.
 */
export function grantStatements(role: string): string[] {
  const who = quoteIdentifier(role);
  return [
    `GRANT USAGE ON SCHEMA public TO ${who}`,
    `GRANT SELECT ON schema_version TO ${who}`,
    `GRANT SELECT, INSERT ON ${APPEND_ONLY.join(', ')} TO ${who}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ${WORKING.join(', ')} TO ${who}`,
    // The rowid and seq counters of the tables above.
    `GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${who}`,
  ];
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class SchemaError extends Error {}

/** The version this database's schema is at; 0 for an empty database. */
export async function schemaVersion(client: ClientBase): Promise<number> {
  const exists = await client.query<{ present: boolean }>("SELECT to_regclass('schema_version') IS NOT NULL AS present");
  if (!exists.rows[0]!.present) return 0;
  const result = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_version');
  return result.rows[0]!.version ?? 0;
}

/**
 * Brings the schema to this version's, under the migration lock. A database already current is left alone without
 * taking the lock, so a server whose role may not create tables starts on a migrated one; one that needs migrating
 * and whose role may not says who must run `db migrate`.
 */
export async function migrate(client: ClientBase, appVersion: string): Promise<{ from: number; to: number }> {
  const before = await schemaVersion(client);
  if (before > SCHEMA_VERSION) throw new SchemaError(`This database's schema is at version ${before}, newer than this server's ${SCHEMA_VERSION}: another replica runs a newer mollie-invoice-mcp. Upgrade this one to the same version.`);
  if (before === SCHEMA_VERSION) return { from: before, to: before };
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_by TEXT NOT NULL)');
    const current = await schemaVersion(client);
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_version (version, description, applied_by) VALUES ($1, $2, $3)', [migration.version, migration.description, `mollie-invoice-mcp ${appVersion}`]);
    }
    await client.query('COMMIT');
    return { from: current, to: SCHEMA_VERSION };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if ((error as { code?: string }).code === '42501') {
      throw new SchemaError(`This database's schema is at version ${before} and this server needs ${SCHEMA_VERSION}, but its role may not create tables (it should not own them). Run \`mollie-invoice-mcp db migrate\` with the owner's MOLLIE_MCP_DATABASE_URL first.`);
    }
    throw error;
  }
}
