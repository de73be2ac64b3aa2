/**
 * The worker thread behind PostgresDatabase: it owns the one `pg` connection and runs each statement the server's
 * thread sends, answering on the shared port and waking that thread (which waits on `signal`). See pg-database.ts.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import pg from 'pg';
import { migrate } from './schema.js';
import { PG_TYPES } from './pg-types.js';

export interface WorkerSetup {
  url: string;
  port: MessagePort;
  signal: Int32Array;
  appVersion: string;
  migrate: boolean;
}

/** Every request carries an id, and its reply the same one: a late reply to a request given up on is told apart. */
export type WorkerCommand = { op: 'query'; text: string; values: unknown[]; array: boolean } | { op: 'simple'; text: string } | { op: 'end' };
/** inTransaction: the server's thread has a transaction open on this connection. */
export type WorkerRequest = { id: number; inTransaction: boolean } & WorkerCommand;

export type WorkerReply = { id: number } & (
  | { ok: true; rows: unknown[]; rowCount: number }
  | { ok: false; error: { message: string; code: string | undefined; detail: string | undefined; constraint: string | undefined } }
);

type Answer = { ok: true; rows: unknown[]; rowCount: number } | { ok: false; error: { message: string; code: string | undefined; detail: string | undefined; constraint: string | undefined } };

const { url, port, signal, appVersion, migrate: shouldMigrate } = workerData as WorkerSetup;

function reply(id: number, answer: Answer): void {
  port.postMessage({ id, ...answer });
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

function failure(error: unknown): Answer {
  const e = error as { message?: string; code?: string; detail?: string; constraint?: string };
  return { ok: false, error: { message: e.message ?? String(error), code: e.code, detail: e.detail, constraint: e.constraint } };
}

let client: pg.Client | null = null;
let broken = false;

async function connect(): Promise<pg.Client> {
  const fresh = new pg.Client({ connectionString: url, types: PG_TYPES, application_name: 'mollie-invoice-mcp', connectionTimeoutMillis: 10_000 });
  // A dropped connection is noticed at the next statement, which reconnects; unhandled, it would end the process.
  fresh.on('error', () => {
    broken = true;
  });
  await fresh.connect();
  // Every commit fsynced, whatever the database's or role's default; a transaction may lower it for itself.
  await fresh.query('SET synchronous_commit = on');
  broken = false;
  return fresh;
}

async function current(): Promise<pg.Client> {
  if (client === null || broken) {
    await client?.end().catch(() => undefined);
    client = await connect();
  }
  return client;
}

port.on('message', (request: WorkerRequest) => {
  void (async () => {
    if (request.op === 'end') {
      await client?.end().catch(() => undefined);
      client = null;
      reply(request.id, { ok: true, rows: [], rowCount: 0 });
      port.close();
      return;
    }
    try {
      if (broken && request.inTransaction) {
        // The transaction died with its connection. Its statements must not go on, without its lock, on a new one:
        // each fails until the server's thread rolls back (which there is nothing left to do for).
        if (request.op === 'simple' && request.text === 'ROLLBACK') {
          reply(request.id, { ok: true, rows: [], rowCount: 0 });
          return;
        }
        reply(request.id, { ok: false, error: { message: 'the connection to PostgreSQL was lost in the middle of a transaction, which was rolled back', code: '08006', detail: undefined, constraint: undefined } });
        return;
      }
      const connection = await current();
      if (request.op === 'simple') {
        const results = await connection.query(request.text);
        const last = Array.isArray(results) ? results[results.length - 1] : results;
        reply(request.id, { ok: true, rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 });
        return;
      }
      const result = await connection.query({ text: request.text, values: request.values, ...(request.array ? { rowMode: 'array' as const } : {}) });
      reply(request.id, { ok: true, rows: result.rows, rowCount: result.rowCount ?? 0 });
    } catch (error) {
      reply(request.id, failure(error));
    }
  })();
});

// Connected (and the schema current) before the first statement: the server's thread waits for this answer.
void (async () => {
  try {
    const connection = await current();
    if (shouldMigrate) await migrate(connection, appVersion);
    reply(0, { ok: true, rows: [], rowCount: 0 });
  } catch (error) {
    reply(0, failure(error));
  }
})();
