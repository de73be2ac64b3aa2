/**
 * 4. The log at scale: a generator fills a database with 1,000,000 calls (2,000,000 hash-chained rows) of 50 agents
 * over a year, shaped like the rows the gate writes; then list_logs runs through the gate with typical filters,
 * `audit verify` checks the whole chain, and the file size is read.
 */
import { execFileSync } from 'node:child_process';
import { createHash, hash as digest, randomUUID } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { AUDIT_COLUMNS, GENESIS_HASH, rowHash, type AuditRow } from '../src/audit/audit-log.js';
import { encodeCursor } from '../src/audit/call-entries.js';
import { buildStory } from '../src/audit/story.js';
import { consoleFigures } from '../src/console/console-figures.js';
import { readConfig } from '../src/config.js';
import { openDatabase } from '../src/database.js';
import { openEngine } from '../src/engine.js';
import { summarize, type Summary } from './stats.js';
import { CLI, createBenchWorkspace } from './workspace.js';

export interface LogScaleResult {
  calls: number;
  agents: number;
  generateSeconds: number;
  queries: { filter: string; args: string; latency: Summary; entries: number }[];
  /** What the console's auditor pages read on this log: a story, and the charts' 30 days of figures. */
  console: { page: string; latency: Summary; size: string }[];
  verifySeconds: number;
  verifiedRows: number;
  bytes: number;
  bytesPer1000Calls: number;
}

const AGENTS = Array.from({ length: 50 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
const YEAR_MS = 365 * 24 * 3600 * 1000;
const AUDIT_INDEXES = ['audit_call', 'audit_agent', 'audit_payment', 'audit_invoice', 'audit_denied', 'audit_unknown'];

/** A small deterministic generator, so every run builds the same log. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Generated {
  paymentIds: string[];
  invoiceIds: string[];
  firstAt: number;
  lastAt: number;
}

/** Writes `calls` calls straight into the table (indexes built once at the end, as a bulk load does). */
export function generateLog(path: string, calls: number): Generated {
  const db = openDatabase(path);
  // A bulk load into a throwaway file: no journal, no fsync, a cache that holds it; the server's settings come back
  // when the file is opened again below.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1000000');
  for (const index of AUDIT_INDEXES) db.exec(`DROP INDEX IF EXISTS ${index}`);
  // Many rows per INSERT: binding is per value either way, but the statement runs once per 100 rows.
  const ROWS_PER_INSERT = 100;
  const placeholders = `(${AUDIT_COLUMNS.map(() => '?').join(', ')})`;
  const insertMany = db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES ${Array(ROWS_PER_INSERT).fill(placeholders).join(', ')}`);
  const insertOne = db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES ${placeholders}`);
  // A money-moving call's reservation, as the gate leaves it: audit verify recomputes these from the rows.
  const reserve = db.prepare(
    "INSERT INTO reservations (call_id, agent, tool, currency, amount_minor, reserved_at, state, approved, repeat_key) VALUES (?, ?, ?, 'EUR', ?, ?, ?, 0, ?)",
  );
  const openRead = db.prepare("INSERT INTO open_reads (call_id, instance_id, opened_at) VALUES (?, 'bench-stopped', ?)");
  let pending: unknown[] = [];
  const flush = (): void => {
    for (let at = 0; at < pending.length; at += AUDIT_COLUMNS.length) insertOne.run(pending.slice(at, at + AUDIT_COLUMNS.length));
    pending = [];
  };
  const next = random(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const policyHashes = AGENTS.map((agent) => createHash('sha256').update(agent).digest('hex'));
  const paymentIds: string[] = [];
  const invoiceIds: string[] = [];
  const started = Date.now() - YEAR_MS;
  const step = YEAR_MS / calls;
  let prev = GENESIS_HASH;
  let seq = 0;
  // The rows are hashed by the server's own rowHash, so `audit verify` at the end checks the generator too.
  const write = (row: Row): void => {
    seq += 1;
    row.seq = seq;
    row.prev_hash = prev;
    const hash = rowHash(row as unknown as Omit<AuditRow, 'hash'>);
    row.hash = hash;
    for (const column of AUDIT_COLUMNS) pending.push(row[column]);
    if (pending.length === ROWS_PER_INSERT * AUDIT_COLUMNS.length) {
      insertMany.run(pending);
      pending = [];
    }
    prev = hash;
  };
  const clients = ['claude-ai', 'cursor-vscode', 'Visual Studio Code', 'claude-code'];
  const batch = 25_000;
  for (let from = 0; from < calls; from += batch) {
    db.transaction(() => {
      for (let i = from; i < Math.min(calls, from + batch); i++) {
        const agentIndex = Math.floor(next() * AGENTS.length);
        const agent = AGENTS[agentIndex]!;
        const callId = randomUUID();
        const roll = next();
        const tool =
          roll < 0.5 || paymentIds.length === 0
            ? paymentIds.length === 0 ? 'create_invoice_payment' : 'get_payment_status'
            : roll < 0.745 ? 'create_invoice_payment' : roll < 0.75 ? 'cancel_invoice_payment' : roll < 0.85 ? 'list_logs' : 'refund';
        const denied = next() < 0.1;
        const d = blankRow();
        const o = blankRow();
        d.call_id = o.call_id = callId;
        d.agent = o.agent = agent;
        d.transport = o.transport = next() < 0.7 ? 'stdio' : 'http';
        d.client_name = o.client_name = pick(clients);
        d.tool = o.tool = tool;
        d.kind = 'decision';
        o.kind = 'outcome';
        d.at = new Date(started + i * step).toISOString();
        o.at = new Date(started + i * step + 40).toISOString();
        d.policy_sha256 = policyHashes[agentIndex]!;
        const invoice = `2026-${Math.floor(next() * 90_000) + 10_000}`;
        if (tool === 'create_invoice_payment') {
          const amount = `${Math.floor(next() * 900) + 10}.${String(Math.floor(next() * 100)).padStart(2, '0')}`;
          const paymentId = `tr_${callId.slice(0, 8)}${callId.slice(9, 11)}`;
          d.arguments = `{"invoice_id":"${invoice}","amount":"${amount}","currency":"EUR"}`;
          d.invoice_id = o.invoice_id = invoice;
          if (invoiceIds.length < 10_000) invoiceIds.push(invoice);
          d.amount_value = amount;
          d.amount_currency = 'EUR';
          d.action = `create a pay link of ${amount} EUR for invoice ${invoice}`;
          d.idempotency_key = digest('sha256', callId, 'hex');
          if (!denied) {
            o.action = `created payment ${paymentId}`;
            o.payment_id = paymentId;
            paymentIds.push(paymentId);
          }
        } else if (tool === 'get_payment_status') {
          const paymentId = pick(paymentIds);
          d.arguments = `{"payment_id":"${paymentId}"}`;
          d.payment_id = paymentId;
          d.action = `read the status of payment ${paymentId}`;
          if (!denied) {
            o.action = `read payment ${paymentId}: paid`;
            o.payment_id = paymentId;
          }
        } else if (tool === 'refund') {
          const paymentId = pick(paymentIds);
          d.arguments = `{"payment_id":"${paymentId}","amount":"20.00"}`;
          d.payment_id = paymentId;
          d.amount_value = '20.00';
          d.amount_currency = 'EUR';
          d.action = `refund 20.00 EUR of payment ${paymentId}`;
          d.idempotency_key = digest('sha256', callId, 'hex');
          if (!denied) {
            o.action = `refund re_${callId.slice(0, 10)} of 20.00 EUR is pending`;
            o.payment_id = paymentId;
            o.refund_id = `re_${callId.slice(0, 10)}`;
          }
        } else {
          d.arguments = '{"limit":50}';
          d.action = 'read the audit log';
          if (!denied) o.action = 'returned 50 entries';
        }
        if (denied) {
          const message = `The agent "${agent}" may not call ${tool}: its policy does not list it.`;
          d.decision = 'denied';
          d.reason = 'tool_not_allowed';
          d.reason_message = message;
          d.rule = `tools.${tool} is not in policies/${agent}.yaml`;
          o.outcome = 'error';
          o.error_code = 'policy_denied';
          o.error_message = message;
          o.duration_ms = 0;
        } else {
          d.decision = 'allowed';
          d.reason = 'allowed';
          d.reason_message = `Allowed by policies/${agent}.yaml.`;
          d.rule = `tools.${tool}`;
          // Most end well; one in a hundred fails at Mollie, one in five hundred ends unknown (a timeout).
          const end = next();
          o.outcome = end < 0.002 ? 'unknown' : end < 0.012 ? 'error' : 'ok';
          if (o.outcome !== 'ok') {
            o.error_code = o.outcome === 'unknown' ? 'mollie_unavailable' : 'not_found';
            o.error_message = o.outcome === 'unknown' ? 'Mollie did not answer within 10 s.' : 'Mollie has no such resource.';
          }
          o.duration_ms = Math.floor(next() * 400) + 20;
        }
        write(d);
        // One allowed call in ten thousand never got its outcome (a server that stopped): pending, still holding its
        // reservation or its open_reads mark, as the gate leaves it.
        const finished = next() >= 0.0001 || denied;
        if (finished) write(o);
        if (!denied && (tool === 'create_invoice_payment' || tool === 'refund')) {
          const state = !finished ? 'reserved' : o.outcome === 'ok' ? 'spent' : o.outcome === 'unknown' ? 'unknown' : 'released';
          const minor = Math.round(Number(d.amount_value) * 100);
          reserve.run(callId, agent, tool, minor, d.at, state, tool === 'refund' ? `refund:${d.payment_id}:EUR:${minor}` : null);
        } else if (!finished) {
          openRead.run(callId, d.at);
        }
      }
      flush();
    })();
  }
  db.close();
  // Opening it again puts it back in WAL mode and builds the indexes the server's schema declares.
  openDatabase(path).close();
  return { paymentIds, invoiceIds, firstAt: started, lastAt: started + calls * step };
}

type Row = Record<(typeof AUDIT_COLUMNS)[number], string | number | null>;

/** Every column, in one literal: rows of one shape are what V8 handles fastest, two million times. */
function blankRow(): Row {
  return {
    seq: 0, call_id: null, kind: null, at: null, agent: null, transport: null, client_name: null, tool: null, arguments: null,
    invoice_id: null, payment_id: null, refund_id: null, amount_value: null, amount_currency: null, decision: null, reason: null,
    reason_message: null, rule: null, policy_sha256: null, idempotency_key: null, action: null, outcome: null, error_code: null,
    error_message: null, mollie_error: null, duration_ms: null, prev_hash: null, hash: null,
  };
}

export async function logAtScale(calls = 1_000_000, samples = 200): Promise<LogScaleResult> {
  const workspace = createBenchWorkspace();
  try {
    const begun = performance.now();
    const generated = generateLog(workspace.db, calls);
    const generateSeconds = (performance.now() - begun) / 1000;
    const bytes = statSync(workspace.db).size;

    const env = workspace.env();
    const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));
    const engine = openEngine(readConfig(env, { simulator: true }), { logger, env, serving: true });
    const origin = { caller: { agent: 'bench-agent', token: null }, transport: 'in-process' as const, clientName: 'bench', confirm: null };
    const next = random(11);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const day = 24 * 3600 * 1000;
    const window = (days: number): Record<string, unknown> => {
      const from = generated.firstAt + next() * (generated.lastAt - generated.firstAt - days * day);
      return { since: new Date(from).toISOString(), until: new Date(from + days * day).toISOString() };
    };
    // Every filter list_logs takes, the rare and unhelpful ones too: a page must cost about the same whatever is asked.
    const cases: { filter: string; args: () => Record<string, unknown> }[] = [
      { filter: 'no filter (newest page)', args: () => ({}) },
      { filter: 'agent', args: () => ({ agent: pick(AGENTS) }) },
      { filter: 'payment', args: () => ({ payment_id: pick(generated.paymentIds) }) },
      { filter: 'invoice', args: () => ({ invoice_id: pick(generated.invoiceIds) }) },
      { filter: 'time range (1 day)', args: () => window(1) },
      { filter: 'time range (30 days)', args: () => window(30) },
      { filter: 'tool (common)', args: () => ({ tool: 'get_payment_status' }) },
      { filter: 'tool (rare: 0.5% of calls)', args: () => ({ tool: 'cancel_invoice_payment' }) },
      { filter: 'tool nobody calls', args: () => ({ tool: 'transfer_funds' }) },
      { filter: 'allowed only', args: () => ({ decision: 'allowed' }) },
      { filter: 'denied only', args: () => ({ decision: 'denied' }) },
      { filter: 'outcome ok', args: () => ({ outcome: 'ok' }) },
      { filter: 'outcome error', args: () => ({ outcome: 'error' }) },
      { filter: 'outcome unknown (0.2%)', args: () => ({ outcome: 'unknown' }) },
      { filter: 'outcome pending (0.01%)', args: () => ({ outcome: 'pending' }) },
      { filter: 'agent + tool (rare)', args: () => ({ agent: pick(AGENTS), tool: 'cancel_invoice_payment' }) },
      { filter: 'agent + denied only', args: () => ({ agent: pick(AGENTS), decision: 'denied' }) },
      { filter: 'agent + outcome unknown', args: () => ({ agent: pick(AGENTS), outcome: 'unknown' }) },
      { filter: '30 days + tool (rare)', args: () => ({ ...window(30), tool: 'cancel_invoice_payment' }) },
      { filter: 'deep cursor (oldest 10%)', args: () => ({ cursor: encodeCursor(Math.floor(next() * calls * 0.2) + 2) }) },
      { filter: 'agent + deep cursor', args: () => ({ agent: pick(AGENTS), cursor: encodeCursor(Math.floor(next() * calls * 0.2) + 2) }) },
      { filter: 'outcome error + deep cursor', args: () => ({ outcome: 'error', cursor: encodeCursor(Math.floor(next() * calls * 0.2) + 2) }) },
    ];
    const queries: LogScaleResult['queries'] = [];
    for (const { filter, args } of cases) {
      const latencies: number[] = [];
      let entries = 0;
      let example = '';
      for (let i = 0; i < samples + 10; i++) {
        const given = args();
        const started = performance.now();
        const reply = await engine.gate.call(origin, 'list_logs', given);
        const took = performance.now() - started;
        if (reply.isError) throw new Error(`list_logs ${JSON.stringify(given)} failed: ${reply.text}`);
        if (i < 10) continue;
        latencies.push(took);
        entries += (reply.structuredContent.entries as unknown[]).length;
        example ||= JSON.stringify(given);
      }
      queries.push({ filter, args: example, latency: summarize(latencies), entries: entries / samples });
    }
    // The auditor's pages: the story of a payment and of an invoice, and the charts' figures, read as the console does.
    const consolePages: LogScaleResult['console'] = [];
    const pages: { page: string; read: () => string }[] = [
      { page: 'story of a payment (tr_)', read: () => `${buildStory(engine.db, pick(generated.paymentIds))?.entries.length ?? 0} entries` },
      { page: 'story of an invoice', read: () => `${buildStory(engine.db, pick(generated.invoiceIds))?.entries.length ?? 0} entries` },
      { page: 'charts: 30 days of money and denials', read: () => `${consoleFigures(engine.db, new Date(generated.lastAt)).denials.reduce((sum, count) => sum + count, 0)} denials` },
    ];
    for (const { page, read } of pages) {
      const latencies: number[] = [];
      let size = '';
      const rounds = page.startsWith('charts') ? 30 : samples;
      for (let i = 0; i < rounds + 3; i++) {
        const started = performance.now();
        size = read();
        if (i >= 3) latencies.push(performance.now() - started);
      }
      consolePages.push({ page, latency: summarize(latencies), size });
    }
    engine.close();

    // The command an auditor runs, start-up included.
    const verifyStarted = performance.now();
    const said = execFileSync(process.execPath, [CLI, 'audit', 'verify', '--db', workspace.db], { encoding: 'utf8' });
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    const verified = /Audit log intact: (\d+) rows/.exec(said);
    if (!verified) throw new Error(`the generated log does not verify: ${said}`);
    const verifiedRows = Number(verified[1]);
    return { calls, agents: AGENTS.length, generateSeconds, queries, console: consolePages, verifySeconds, verifiedRows, bytes, bytesPer1000Calls: (bytes / calls) * 1000 };
  } finally {
    workspace.remove();
    rmSync(`${workspace.db}-wal`, { force: true });
  }
}
