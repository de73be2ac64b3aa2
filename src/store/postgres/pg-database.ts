/**
 * The PostgreSQL adapter of the server's database connection: the same calls the server makes on better-sqlite3
 * (prepare, get, all, run, iterate, exec, pragma, transactions), so the gate, the tools and the commands run unchanged
 * on either store.
 *
 * Why synchronous. The server's storage code is synchronous, as better-sqlite3 is: a transaction is one block of code
 * that nothing else in the process can interleave with, which is what keeps a caps check and its reservation, or two
 * chained audit rows, together. Here each statement goes to a worker thread that owns the `pg` connection, and the
 * server's thread waits for the answer (Atomics.wait), as it waits for SQLite's fsync on every commit. Waiting for
 * another replica's lock does not hold the thread: BEGIN IMMEDIATE takes the write lock with the lock_timeout of
 * the connection's busy_timeout, so immediateWhenFree gives way and tries again after a pause, as it does on SQLite.
 *
 * The write lock. SQLite's BEGIN IMMEDIATE lets one writer in at a time, across processes. Here BEGIN IMMEDIATE is a
 * READ COMMITTED transaction whose first statement locks the single row of audit_chain_head FOR UPDATE: one writer
 * at a time across replicas, and every statement after the lock reads what the previous writers committed. So the
 * caps check and reservation, and the chain's head, are exactly as safe as on one SQLite file.
 *
 * The SQL. Statements are written once, for SQLite; a few forms are turned into PostgreSQL's here: `?` and `@name`
 * parameters, INSERT OR IGNORE, NOT INDEXED. The schema (schema.ts) gives the tables the same columns, a `rowid`
 * where statements order by it, and C collation, so text sorts and compares as in SQLite.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { packagePath } from '../../package-root.js';
import type { DatabaseUrl } from '../database-url.js';
import { explainPostgresError, StoreError } from './explain.js';
import type { WorkerCommand, WorkerReply } from './pg-worker.js';

/** Found when first needed: a server on SQLite never looks for it. */
let workerFile: string | undefined;

/**
 * How long the server's thread waits for any one answer. A statement's own lock wait is bounded first (lock_timeout);
 * this stays well under the 60 s after which other replicas take a replica that has not beaten for dead.
 */
const ANSWER_DEADLINE_MS = 20_000;
/** A statement's lock wait inside a write transaction: the busy timeout of SQLite, 15 s. */
const LOCK_TIMEOUT_MS = 15_000;
const CONNECT_DEADLINE_MS = 30_000;

/** An error from PostgreSQL, with its SQLSTATE as `code` (55P03: a lock not free within lock_timeout). */
export class PostgresError extends StoreError {}

interface Translated {
  text: string;
  /** For statements with @name parameters: the names, in the order of $1, $2, ... */
  names: string[] | null;
  kind: 'plain' | 'begin' | 'commit' | 'rollback' | 'pragma';
  /** SELECT * of a table with a rowid column: SQLite's rowid is hidden from *, so it is dropped here too. */
  hidesRowid: boolean;
}

/**
 * `?` and `@name` become `$n` (outside quotes); INSERT OR IGNORE, index hints and `IS [NOT] ?` become what PostgreSQL
 * says.
 */
export function translate(sql: string): Translated {
  const trimmed = sql.trim().replace(/;$/, '');
  const upper = trimmed.toUpperCase();
  if (upper === 'BEGIN IMMEDIATE' || upper === 'BEGIN') return { text: trimmed, names: null, kind: 'begin', hidesRowid: false };
  if (upper === 'COMMIT' || upper === 'END') return { text: 'COMMIT', names: null, kind: 'commit', hidesRowid: false };
  if (upper === 'ROLLBACK') return { text: 'ROLLBACK', names: null, kind: 'rollback', hidesRowid: false };
  if (upper.startsWith('PRAGMA ')) return { text: trimmed.slice(7), names: null, kind: 'pragma', hidesRowid: false };
  let text = '';
  let positional = 0;
  const names: string[] = [];
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i]!;
    if (c === "'" || c === '"') {
      const end = closing(trimmed, i, c);
      text += trimmed.slice(i, end + 1);
      i = end;
    } else if (c === '?') {
      positional += 1;
      text += `$${positional}`;
    } else if (c === '@' && /[A-Za-z_]/.test(trimmed[i + 1] ?? '')) {
      let j = i + 1;
      while (j < trimmed.length && /[A-Za-z0-9_]/.test(trimmed[j]!)) j++;
      const name = trimmed.slice(i + 1, j);
      let index = names.indexOf(name);
      if (index === -1) index = names.push(name) - 1;
      text += `$${index + 1}`;
      i = j - 1;
    } else {
      text += c;
    }
  }
  // SQLite's index hints; PostgreSQL's planner chooses for itself.
  text = text.replace(/\bNOT\s+INDEXED\b/gi, '').replace(/\bINDEXED\s+BY\s+\w+/gi, '');
  // A JSON array parameter as a table of its values.
  text = text.replace(/\bjson_each\((\$\d+)\)/gi, 'json_array_elements_text($1::json)');
  // SQLite's null-safe comparison with a parameter.
  text = text.replace(/\bIS\s+NOT\s+(\$\d+)/gi, 'IS DISTINCT FROM $1').replace(/\bIS\s+(\$\d+)/gi, 'IS NOT DISTINCT FROM $1');
  if (/^\s*INSERT\s+OR\s+IGNORE\s+INTO\b/i.test(text)) text = `${text.replace(/^\s*INSERT\s+OR\s+IGNORE\s+INTO\b/i, 'INSERT INTO')} ON CONFLICT DO NOTHING`;
  return { text, names: names.length > 0 ? names : null, kind: 'plain', hidesRowid: /^\s*SELECT\s+\*\s+FROM\s+(payments|payment_links|reservations)\b/i.test(text) };
}

function closing(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) i++;
      else return i;
    }
  }
  return text.length - 1;
}

type Params = unknown[];

function values(translated: Translated, params: Params): unknown[] {
  if (translated.names !== null) {
    const bag = (params[0] ?? {}) as Record<string, unknown>;
    return translated.names.map((name) => normalize(bag[name]));
  }
  return params.map(normalize);
}

function normalize(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  // PostgreSQL text cannot hold U+0000; SQLite keeps it. (Audit rows have it replaced before they are hashed.)
  if (typeof value === 'string' && value.includes('\u0000')) return value.replaceAll('\u0000', '\ufffd');
  return value;
}

export class PostgresStatement<P extends unknown[] = unknown[], R = unknown> {
  private arrayMode = false;

  constructor(
    private readonly db: PostgresDatabase,
    private readonly translated: Translated,
  ) {}

  raw(on = true): this {
    this.arrayMode = on;
    return this;
  }

  get(...params: P): R | undefined {
    return this.db.execute(this.translated, params, this.arrayMode).rows[0] as R | undefined;
  }

  all(...params: P): R[] {
    return this.db.execute(this.translated, params, this.arrayMode).rows as R[];
  }

  run(...params: P): { changes: number; lastInsertRowid: number } {
    return { changes: this.db.execute(this.translated, params, false).rowCount, lastInsertRowid: 0 };
  }

  *iterate(...params: P): IterableIterator<R> {
    yield* this.db.execute(this.translated, params, this.arrayMode).rows as R[];
  }
}

export class PostgresDatabase {
  readonly dialect = 'postgres' as const;
  readonly name: string;
  private port!: MessagePort;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private worker!: Worker;
  private nextId = 1;
  private needsStart = false;
  private readonly statements = new Map<string, Translated>();
  private transaction = false;
  private busyTimeoutMs = 15_000;
  private synchronousCommit: 'on' | 'off' = 'on';
  private closed = false;

  constructor(
    private readonly database: DatabaseUrl,
    private readonly options: { appVersion: string; migrate?: boolean; answerDeadlineMs?: number },
  ) {
    this.name = database.described;
    this.start(options.migrate !== false);
  }

  /** The worker and its connection; migrating first when asked. Waits until it is connected, or throws why not. */
  private start(migrate: boolean): void {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    workerFile ??= packagePath('dist/src/store/postgres/pg-worker.js');
    this.worker = new Worker(workerFile, {
      workerData: { url: this.database.url, port: port2, signal: this.signal, appVersion: this.options.appVersion, migrate },
      transferList: [port2],
      // The worker is a module file: a parent started as `node --input-type=module -e ...` must not pass that on.
      execArgv: process.execArgv.filter((arg) => !arg.startsWith('--input-type')),
    });
    // The worker must not keep a finished command alive; the server's own handles keep it running while it serves.
    this.worker.unref();
    this.port.unref();
    // The worker sets synchronous_commit on for every new connection, whatever the database's default.
    this.synchronousCommit = 'on';
    const ready = this.wait(0, CONNECT_DEADLINE_MS);
    if (!ready.ok) {
      void this.worker.terminate();
      throw explainPostgresError(this.database, ready.error);
    }
  }

  get inTransaction(): boolean {
    return this.transaction;
  }

  /** Whatever better-sqlite3 callers ask of `open`: this connection is open until close(). */
  get open(): boolean {
    return !this.closed;
  }

  prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): PostgresStatement<P, R> {
    let translated = this.statements.get(sql);
    if (translated === undefined) {
      translated = translate(sql);
      this.statements.set(sql, translated);
    }
    return new PostgresStatement<P, R>(this, translated);
  }

  exec(sql: string): void {
    const translated = translate(sql);
    if (translated.kind !== 'plain') {
      this.execute(translated, [], false);
      return;
    }
    this.send({ op: 'simple', text: sql });
  }

  /** The pragmas the server sets, in PostgreSQL's terms: busy_timeout is the write lock's lock_timeout. */
  pragma(source: string, options?: { simple?: boolean }): unknown {
    const table = /^\s*table_info\((\w+)\)\s*$/i.exec(source);
    if (table) {
      return this.send({ op: 'query', text: 'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position', values: [table[1]!.toLowerCase()], array: false }).rows;
    }
    const [key, value] = source.split('=').map((part) => part.trim().toLowerCase());
    if (key === 'busy_timeout' && value !== undefined) {
      this.busyTimeoutMs = Number(value);
      return [];
    }
    if (key === 'synchronous') {
      if (value === undefined) return options?.simple ? (this.synchronousCommit === 'on' ? 2 : 1) : [{ synchronous: this.synchronousCommit === 'on' ? 2 : 1 }];
      // NORMAL: the commit survives a crash of this process, maybe not a power cut of the database's machine.
      const wanted = value === 'normal' || value === '1' ? 'off' : 'on';
      if (wanted !== this.synchronousCommit) {
        this.send({ op: 'simple', text: `SET synchronous_commit = ${wanted}` });
        this.synchronousCommit = wanted;
      }
      return [];
    }
    return [];
  }

  execute(translated: Translated, params: Params, array: boolean): { rows: unknown[]; rowCount: number } {
    if (translated.kind === 'pragma') {
      const answer = this.pragma(translated.text);
      return { rows: Array.isArray(answer) ? answer : [answer], rowCount: 0 };
    }
    if (translated.kind === 'begin') {
      if (this.transaction) throw new PostgresError('cannot start a transaction within a transaction', '25001');
      // One round trip: the transaction, how long to wait for the write lock, and the lock.
      try {
        // The short wait is for the write lock only: once it is held, a statement's own wait (a row an autocommit
        // write of another replica holds for a moment) gets the full timeout, and never runs the work twice.
        this.send({ op: 'simple', text: `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.busyTimeoutMs))}; SELECT 1 FROM audit_chain_head FOR UPDATE; SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS}` });
      } catch (error) {
        this.send({ op: 'simple', text: 'ROLLBACK' });
        throw error;
      }
      this.transaction = true;
      return { rows: [], rowCount: 0 };
    }
    if (translated.kind === 'commit' || translated.kind === 'rollback') {
      try {
        return this.send({ op: 'simple', text: translated.text });
      } finally {
        this.transaction = false;
      }
    }
    const result = this.send({ op: 'query', text: translated.text, values: values(translated, params), array });
    if (translated.hidesRowid) for (const row of result.rows as Record<string, unknown>[]) delete row.rowid;
    return result;
  }

  private send(request: WorkerCommand): { rows: unknown[]; rowCount: number } {
    if (this.closed) throw new PostgresError('The database connection is closed.', undefined);
    if (this.needsStart) {
      // Throws, saying why, while the database cannot be reached; the statement after tries again.
      this.start(false);
      this.needsStart = false;
    }
    const id = this.nextId++;
    this.port.postMessage({ ...request, id, inTransaction: this.transaction });
    const reply = this.wait(id, this.options.answerDeadlineMs ?? ANSWER_DEADLINE_MS);
    if (!reply.ok) {
      if (reply.error.code === 'ETIMEDOUT' && request.op !== 'end') this.restart();
      throw this.error(reply.error);
    }
    return reply;
  }

  /**
   * The reply to request `id`. Replies to requests given up on earlier are read and dropped: a late answer is never
   * taken for the answer to a later statement.
   */
  private wait(id: number, deadlineMs: number): WorkerReply {
    const giveUp = Date.now() + deadlineMs;
    for (;;) {
      for (let message = receiveMessageOnPort(this.port); message !== undefined; message = receiveMessageOnPort(this.port)) {
        if ((message.message as WorkerReply).id === id) return message.message as WorkerReply;
      }
      const left = giveUp - Date.now();
      if (left <= 0) {
        return { id, ok: false, error: { message: `PostgreSQL at ${this.name} did not answer within ${Math.round(deadlineMs / 1000)} s`, code: 'ETIMEDOUT', detail: undefined, constraint: undefined } };
      }
      Atomics.wait(this.signal, 0, 0, left);
      Atomics.store(this.signal, 0, 0);
    }
  }

  /**
   * After an answer that never came, the connection's state is unknown (a transaction may still be open on it): the
   * worker and its connection are replaced, so the next statement starts clean. The old transaction ends with its
   * connection, rolled back by the server.
   */
  private restart(): void {
    void this.worker.terminate();
    this.transaction = false;
    this.needsStart = true;
  }

  private error(error: { message: string; code: string | undefined }): PostgresError {
    return new PostgresError(this.database.scrub(error.message), error.code);
  }

  close(): void {
    if (this.closed) return;
    if (this.transaction) {
      try {
        this.send({ op: 'simple', text: 'ROLLBACK' });
      } catch {
        // Closing anyway.
      }
    }
    try {
      this.send({ op: 'end' });
    } catch {
      // The worker is ended below either way.
    }
    this.closed = true;
    void this.worker.terminate();
  }
}
