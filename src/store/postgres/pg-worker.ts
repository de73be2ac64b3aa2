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

export type WorkerRequest = { op: 'query'; text: string; values: unknown[]; array: boolean } | { op: 'simple'; text: string } | { op: 'end' };

export type WorkerReply =
  | { ok: true; rows: unknown[]; rowCount: number }
  | { ok: false; error: { message: string; code: string | undefined; detail: string | undefined; constraint: string | undefined } };

const { url, port, signal, appVersion, migrate: shouldMigrate } = workerData as WorkerSetup;

function reply(message: WorkerReply): void {
  port.postMessage(message);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

function failure(error: unknown): WorkerReply {
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
      reply({ ok: true, rows: [], rowCount: 0 });
      port.close();
      return;
    }
    try {
      const connection = await current();
      if (request.op === 'simple') {
        const results = await connection.query(request.text);
        const last = Array.isArray(results) ? results[results.length - 1] : results;
        reply({ ok: true, rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 });
        return;
      }
      const result = await connection.query({ text: request.text, values: request.values, ...(request.array ? { rowMode: 'array' as const } : {}) });
      reply({ ok: true, rows: result.rows, rowCount: result.rowCount ?? 0 });
    } catch (error) {
      reply(failure(error));
    }
  })();
});

// Connected (and the schema current) before the first statement: the server's thread waits for this answer.
void (async () => {
  try {
    const connection = await current();
    if (shouldMigrate) await migrate(connection, appVersion);
    reply({ ok: true, rows: [], rowCount: 0 });
  } catch (error) {
    reply(failure(error));
  }
})();
