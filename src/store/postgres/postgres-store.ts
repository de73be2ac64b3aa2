/**
 * The storage port on PostgreSQL (`pg`), shared by every replica. Transactions run under READ COMMITTED, where each
 * statement reads what was committed when it started; that is what makes the row locks below enough:
 *
 * - a budget: lockBudget upserts the budget's row in budget_locks, which locks it (or waits for whoever holds it);
 *   the sums read after it include every reservation committed under the lock before, so replicas cannot overshoot;
 * - the chain: the first append of a transaction locks audit_chain_head FOR UPDATE and builds the row on the head it
 *   returns; a transaction that waited for the lock reads the head its predecessor left. seq and prev_hash are unique
 *   and a trigger checks each row follows the last, so a writer that skipped the lock fails instead of forking.
 *
 * Budget locks are always taken before the chain head, so two transactions cannot wait on each other in a circle;
 * a deadlock or serialization failure all the same (an operator's own transaction, say) runs the work again, a few
 * times, before it is reported.
 */
import pg from 'pg';
import { AUDIT_COLUMNS, chainRow, GENESIS_HASH, rowHash, type AuditRow, type VerifyResult } from '../../audit/audit-log.js';
import type { DatabaseUrl } from '../database-url.js';
import type { ChainHead, Store, StoreTransaction } from '../store.js';
import { explainPostgresError, StoreError } from './explain.js';
import { migrate } from './schema.js';

export { StoreError };

/** How many times a transaction runs in all when PostgreSQL aborts it for a serialization failure or a deadlock. */
export const TRANSACTION_ATTEMPTS = 5;
/** A writer waits this long for a lock (another replica's transaction) before its statement is cancelled. */
const STATEMENT_TIMEOUT_MS = 15_000;
const PAGE_ROWS = 5_000;

const RETRYABLE = new Set(['40001', '40P01']);

export function isRetryable(error: unknown): boolean {
  return RETRYABLE.has((error as { code?: string } | null)?.code ?? '');
}

/** BIGINT columns (seq, amount_minor) as numbers: every value this server writes is a safe integer. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) {
      return (value: string) => {
        const number = Number(value);
        if (!Number.isSafeInteger(number)) throw new Error(`A BIGINT of ${value} is beyond what this server reads exactly.`);
        return number;
      };
    }
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

const INSERT_ROW = `INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;


export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly described: string;
  private readonly pool: pg.Pool;

  private constructor(
    private readonly database: DatabaseUrl,
    private readonly clock: () => Date,
    poolSize: number,
  ) {
    this.described = database.described;
    this.pool = new pg.Pool({
      connectionString: database.url,
      max: poolSize,
      types,
      application_name: 'mollie-invoice-mcp',
      statement_timeout: STATEMENT_TIMEOUT_MS,
      connectionTimeoutMillis: 10_000,
    });
    // An idle connection the server dropped: the pool makes a new one next time. Without a listener it would crash us.
    this.pool.on('error', () => undefined);
  }

  /** Connects, migrating the schema to this version's first (under the migration lock). */
  static async open(database: DatabaseUrl, options: { appVersion: string; clock?: () => Date; poolSize?: number; migrate?: boolean }): Promise<PostgresStore> {
    const store = new PostgresStore(database, options.clock ?? (() => new Date()), options.poolSize ?? 10);
    try {
      await store.withClient(async (client) => {
        if (options.migrate !== false) await migrate(client, options.appVersion);
      });
      return store;
    } catch (error) {
      await store.pool.end().catch(() => undefined);
      throw store.explain(error);
    }
  }

  /** A driver's error, with the password scrubbed and what to check next; the caller's own errors pass through. */
  explain(error: unknown): Error {
    const code = (error as { code?: string } | null)?.code ?? '';
    if (error instanceof Error && !(error instanceof StoreError) && !(error instanceof pg.DatabaseError) && code === '' && !/timeout|terminated|connect/i.test(error.message)) return error;
    return explainPostgresError(this.database, error);
  }

  private async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await work(client);
    } finally {
      client.release();
    }
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    try {
      return await this.withClient(async (client) => {
        for (let attempt = 1; ; attempt++) {
          await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
          try {
            const result = await work(this.transactionOn(client));
            await client.query('COMMIT');
            return result;
          } catch (error) {
            await client.query('ROLLBACK').catch(() => undefined);
            if (!isRetryable(error) || attempt >= TRANSACTION_ATTEMPTS) throw error;
            // Apart, so the transactions that collided do not collide again.
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
          }
        }
      });
    } catch (error) {
      throw this.explain(error);
    }
  }

  private transactionOn(client: pg.PoolClient): StoreTransaction {
    let head: { seq: number; at: string; hash: string } | undefined | null = null;
    return {
      append: async (fields) => {
        if (head === null) {
          const locked = await client.query<{ seq: number; at: string | null; hash: string }>('SELECT seq, at, hash FROM audit_chain_head FOR UPDATE');
          const row = locked.rows[0];
          if (!row) throw new StoreError('The audit log has no chain head row: the schema was changed by hand. Run `mollie-invoice-mcp db migrate` on a fresh database and `db copy` the log into it.');
          head = row.seq === 0 ? undefined : { seq: row.seq, at: row.at ?? '', hash: row.hash };
        }
        const row = chainRow(fields, head, this.clock());
        await client.query(INSERT_ROW, AUDIT_COLUMNS.map((column) => row[column]));
        head = { seq: row.seq, at: row.at, hash: row.hash };
        return row;
      },
      lockBudget: async (agent, tool, currency) => {
        // An upsert that changes nothing still locks the row, and creates it the first time in one round trip.
        await client.query(
          'INSERT INTO budget_locks (agent, tool, currency) VALUES ($1, $2, $3) ON CONFLICT (agent, tool, currency) DO UPDATE SET agent = EXCLUDED.agent',
          [agent, tool, currency],
        );
      },
      reservedSince: async (agent, tool, currency, since) => {
        const result = await client.query<{ minor: number | null; n: number }>(
          `SELECT sum(amount_minor)::bigint AS minor, count(*)::bigint AS n FROM reservations
           WHERE agent = $1 AND tool = $2 AND currency = $3 AND reserved_at >= $4 AND state != 'released'`,
          [agent, tool, currency, since],
        );
        return { minor: result.rows[0]?.minor ?? 0, count: result.rows[0]?.n ?? 0 };
      },
      unapprovedSince: async (agent, tool, currency, since) => {
        const result = await client.query<{ minor: number | null }>(
          `SELECT sum(amount_minor)::bigint AS minor FROM reservations
           WHERE agent = $1 AND tool = $2 AND currency = $3 AND reserved_at >= $4 AND state != 'released' AND approved = 0`,
          [agent, tool, currency, since],
        );
        return result.rows[0]?.minor ?? 0;
      },
      reserve: async (entry) => {
        await client.query(
          `INSERT INTO reservations (call_id, agent, tool, currency, amount_minor, reserved_at, state, repeat_key, instance_id, approved)
           VALUES ($1, $2, $3, $4, $5, $6, 'reserved', $7, $8, $9)`,
          [entry.callId, entry.agent, entry.tool, entry.money?.currency ?? null, entry.money?.minor ?? null, entry.at, entry.repeatKey ?? null, entry.instanceId ?? null, entry.approved === true ? 1 : 0],
        );
      },
      settle: async (callId, state) => {
        await client.query("UPDATE reservations SET state = $1 WHERE call_id = $2 AND state IN ('reserved', 'unknown')", [state, callId]);
      },
    };
  }

  async head(): Promise<ChainHead> {
    try {
      const result = await this.pool.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_chain_head');
      return { rows: result.rows[0]?.seq ?? 0, hash: result.rows[0]?.hash ?? GENESIS_HASH };
    } catch (error) {
      throw this.explain(error);
    }
  }

  async *rows(fromSeq = 1): AsyncIterable<AuditRow> {
    let next = fromSeq;
    for (;;) {
      let page: AuditRow[];
      try {
        page = (await this.pool.query<AuditRow>(`SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT ${PAGE_ROWS}`, [next])).rows;
      } catch (error) {
        throw this.explain(error);
      }
      yield* page;
      if (page.length < PAGE_ROWS) return;
      next = page[page.length - 1]!.seq + 1;
    }
  }

  async verify(): Promise<VerifyResult> {
    let expectedSeq = 1;
    let expectedPrev = GENESIS_HASH;
    let count = 0;
    for await (const row of this.rows(1)) {
      const bad = (problem: string): VerifyResult => ({ ok: false, rows: count, firstBad: { seq: row.seq, call_id: row.call_id, problem } });
      if (row.seq !== expectedSeq) return bad(`row ${expectedSeq} is missing: the next row is ${row.seq}`);
      if (row.prev_hash !== expectedPrev) return bad('its prev_hash does not match the hash of the row before it');
      if (rowHash(row) !== row.hash) return bad('its contents do not match its hash: the row was changed after it was written');
      expectedPrev = row.hash;
      expectedSeq += 1;
      count += 1;
    }
    return { ok: true, rows: count, lastHash: expectedPrev };
  }

  async databaseId(): Promise<string> {
    const result = await this.pool.query<{ value: string }>("SELECT value FROM store_meta WHERE key = 'database_id'");
    return result.rows[0]!.value;
  }

  /** Runs SQL of the caller's own on one connection (db copy, tests); not part of the port. */
  async withConnection<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await this.withClient(work);
    } catch (error) {
      throw this.explain(error);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
