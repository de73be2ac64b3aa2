/**
 * 6. The shared PostgreSQL store, on a throwaway cluster from Debian's postgresql with fsync on:
 * - the gate's overhead on it (get_payment_status, in process, as benchmark 1 measures it on SQLite);
 * - HTTP throughput of 1, 2 and 3 stateless replicas on one database, and of one stateless server on a SQLite file
 *   beside them: 16 SDK clients, each request to the next replica in turn;
 * - the log at scale on it: the SQLite log of benchmark 4 moved in with `db copy`, list_logs pages, and `audit verify`.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import pg from 'pg';
import { readConfig } from '../src/config.js';
import { openEngine } from '../src/engine.js';
import { startCluster } from '../test/support/postgres-cluster.js';
import { gateOverhead, type OverheadResult } from './gate-overhead.js';
import { generateLog } from './log-scale.js';
import { summarize, type Summary } from './stats.js';
import { CLI, createBenchWorkspace } from './workspace.js';

export interface ReplicaRow {
  store: string;
  replicas: number;
  calls: number;
  perSecond: number;
  latency: Summary;
}

export interface PostgresResult {
  gate: OverheadResult;
  http: ReplicaRow[];
  log: { calls: number; copyCalls: number; copySeconds: number; queries: { filter: string; latency: Summary }[]; verifySeconds: number; verifiedRows: number };
}

async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function startServer(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--transport', 'http', '--port', '0', '--simulator', '--stateless'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      const match = /"url":"(http:\/\/[^"]+)\/mcp"/.exec(seen);
      if (match) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve({ url: match[1]!, child });
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`a replica exited (${code}): ${seen.slice(-2000)}`)));
  });
}

async function throughput(store: string, env: Record<string, string>, replicas: number, token: string, clients = 16, calls = 1600): Promise<ReplicaRow> {
  const servers: { url: string; child: ChildProcess }[] = [];
  // One at a time: the first makes the schema.
  for (let i = 0; i < replicas; i++) servers.push(await startServer(env));
  let next = 0;
  const open = async (): Promise<Client> => {
    const client = new Client({ name: 'bench-replicas', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${servers[0]!.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: (input, init) => fetch(`${servers[next++ % servers.length]!.url}/mcp`, init),
    }));
    return client;
  };
  try {
    const first = await open();
    const created = await first.callTool({ name: 'create_invoice_payment', arguments: { invoice_id: 'BENCH-R', amount: '10.00', kind: 'checkout' } });
    const paymentId = String((created.structuredContent as Record<string, unknown>).payment_id);
    for (let i = 0; i < 300; i++) await first.callTool({ name: 'get_payment_status', arguments: { payment_id: paymentId } });
    const connected = [first, ...(await Promise.all(Array.from({ length: clients - 1 }, open)))];
    const latencies: number[] = [];
    const started = performance.now();
    await Promise.all(connected.map(async (client) => {
      for (let i = 0; i < calls / clients; i++) {
        const begun = performance.now();
        const reply = await client.callTool({ name: 'get_payment_status', arguments: { payment_id: paymentId } });
        if (reply.isError) throw new Error(`get_payment_status failed: ${JSON.stringify(reply.structuredContent)}`);
        latencies.push(performance.now() - begun);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    await Promise.all(connected.map((client) => client.close()));
    return { store, replicas, calls: latencies.length, perSecond: latencies.length / seconds, latency: summarize(latencies) };
  } finally {
    for (const server of servers) server.child.kill('SIGTERM');
    await Promise.all(servers.map((server) => new Promise((resolve) => (server.child.exitCode !== null ? resolve(null) : server.child.once('exit', resolve)))));
  }
}

/**
 * The generated SQLite store into a migrated PostgreSQL database, as the superuser with triggers off
 * (session_replication_role), 2,000 rows a statement; then the chain head set and statistics taken.
 */
async function bulkLoad(file: string, url: string): Promise<void> {
  const { openForReading } = await import('../src/database.js');
  const { PostgresDatabase } = await import('../src/store/postgres/pg-database.js');
  const { parseDatabaseUrl } = await import('../src/store/database-url.js');
  new PostgresDatabase(parseDatabaseUrl(url), { appVersion: 'bench' }).close();
  const source = openForReading(file);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    for (const table of ['audit_log', 'reservations', 'payments', 'payment_links', 'store_meta']) {
      const target = new Set((await client.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_name = $1', [table])).rows.map((row) => row.column_name));
      const columns = (source.pragma(`table_info(${table})`) as { name: string }[]).map((column) => column.name).filter((name) => target.has(name));
      if (table === 'store_meta') await client.query('DELETE FROM store_meta');
      let batch: unknown[][] = [];
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        const values: unknown[] = [];
        const tuples = batch.map((row) => `(${row.map((value) => (values.push(value), `$${values.length}`)).join(',')})`);
        await client.query(`INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')}`, values);
        batch = [];
      };
      for (const row of source.prepare(`SELECT ${columns.join(',')} FROM ${table}`).raw().iterate() as IterableIterator<unknown[]>) {
        batch.push(row);
        if (batch.length * columns.length >= 60_000) await flush();
      }
      await flush();
    }
    await client.query('UPDATE audit_chain_head SET (seq, hash, at) = (SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1)');
    await client.query('COMMIT');
    await client.query('ANALYZE');
  } finally {
    await client.end();
    source.close();
  }
}

export async function postgresStore(calls = 1_000_000, samples = 100): Promise<PostgresResult> {
  const cluster = await startCluster({ durable: true });
  try {
    // 1. The gate, in process, on PostgreSQL.
    const gateUrl = await createDatabase(cluster.adminUrl, 'bench_gate');
    const gate = await gateOverhead(2000, { MOLLIE_MCP_DB: '', MOLLIE_MCP_DATABASE_URL: gateUrl }, ['get_payment_status']);

    // 2. HTTP replicas.
    const token = `mim_${randomBytes(32).toString('base64url')}`;
    const workspace = createBenchWorkspace(createHash('sha256').update(token).digest('hex'));
    const http: ReplicaRow[] = [];
    try {
      http.push(await throughput('SQLite file', workspace.env(), 1, token));
      for (const replicas of [1, 2, 3]) {
        const url = await createDatabase(cluster.adminUrl, `bench_http_${replicas}`);
        http.push(await throughput('PostgreSQL', workspace.env({ MOLLIE_MCP_DB: '', MOLLIE_MCP_DATABASE_URL: url }), replicas, token));
      }
    } finally {
      workspace.remove();
    }

    // 3. The log at scale. `db copy` is timed on a log of 100,000 calls (every row through the append-only triggers);
    // the log of `calls` calls is loaded by the benchmark itself as the cluster's superuser, triggers off, for speed.
    const sample = createBenchWorkspace();
    let copySeconds: number;
    const copyCalls = Math.min(100_000, calls);
    try {
      generateLog(sample.db, copyCalls);
      const copyUrl = await createDatabase(cluster.adminUrl, 'bench_copy');
      const copyStarted = performance.now();
      execFileSync(process.execPath, [CLI, 'db', 'copy', '--from', sample.db], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', MOLLIE_MCP_DATABASE_URL: copyUrl } });
      copySeconds = (performance.now() - copyStarted) / 1000;
    } finally {
      sample.remove();
    }
    const scale = createBenchWorkspace();
    try {
      const generated = generateLog(scale.db, calls);
      const url = await createDatabase(cluster.adminUrl, 'bench_log');
      await bulkLoad(scale.db, url);
      const env = scale.env({ MOLLIE_MCP_DB: '', MOLLIE_MCP_DATABASE_URL: url });
      const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));
      const engine = openEngine(readConfig(env, { simulator: true }), { logger, env, serving: true });
      const origin = { caller: { agent: 'bench-agent', token: null }, transport: 'in-process' as const, clientName: 'bench', confirm: null };
      let seed = 7;
      const pick = <T>(items: readonly T[]): T => items[(seed = (seed * 48271) % 2147483647) % items.length]!;
      const cases: { filter: string; args: () => Record<string, unknown> }[] = [
        { filter: 'no filter (newest page)', args: () => ({}) },
        { filter: 'payment', args: () => ({ payment_id: pick(generated.paymentIds) }) },
        { filter: 'invoice', args: () => ({ invoice_id: pick(generated.invoiceIds) }) },
        { filter: 'tool (rare: 0.5% of calls)', args: () => ({ tool: 'cancel_invoice_payment' }) },
        { filter: 'denied only', args: () => ({ decision: 'denied' }) },
        { filter: 'outcome unknown (0.2%)', args: () => ({ outcome: 'unknown' }) },
      ];
      const queries: PostgresResult['log']['queries'] = [];
      try {
        for (const { filter, args } of cases) {
          const latencies: number[] = [];
          for (let i = 0; i < samples + 5; i++) {
            const started = performance.now();
            const reply = await engine.gate.call(origin, 'list_logs', args());
            if (reply.isError) throw new Error(`list_logs failed on PostgreSQL: ${reply.text}`);
            if (i >= 5) latencies.push(performance.now() - started);
          }
          queries.push({ filter, latency: summarize(latencies) });
        }
      } finally {
        engine.close();
      }
      const verifyStarted = performance.now();
      const said = execFileSync(process.execPath, [CLI, 'audit', 'verify'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', MOLLIE_MCP_DATABASE_URL: url } });
      const verifySeconds = (performance.now() - verifyStarted) / 1000;
      const verified = /Audit log intact: (\d+) rows/.exec(said);
      if (!verified) throw new Error(`the copied log does not verify: ${said}`);
      return { gate: gate.results[0]!, http, log: { calls, copyCalls, copySeconds, queries, verifySeconds, verifiedRows: Number(verified[1]) } };
    } finally {
      scale.remove();
    }
  } finally {
    cluster.stop();
  }
}
