/**
 * 4. The log at scale: a generator fills a database with 1,000,000 calls (2,000,000 hash-chained rows) of 50 agents
 * over a year, shaped like the rows the gate writes; then list_logs runs through the gate with typical filters,
 * `audit verify` checks the whole chain, and the file size is read.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { AUDIT_COLUMNS, GENESIS_HASH, rowHash, type AuditRow } from '../src/audit/audit-log.js';
import { encodeCursor } from '../src/audit/call-entries.js';
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
  verifySeconds: number;
  verifiedRows: number;
  bytes: number;
  bytesPer1000Calls: number;
}

const AGENTS = Array.from({ length: 50 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
const YEAR_MS = 365 * 24 * 3600 * 1000;
const AUDIT_INDEXES = ['audit_call', 'audit_agent', 'audit_decision_at', 'audit_payment', 'audit_invoice', 'audit_denied'];

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
  const insert = db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map(() => '?').join(', ')})`);
  const next = random(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const policyHashes = AGENTS.map((agent) => createHash('sha256').update(agent).digest('hex'));
  const paymentIds: string[] = [];
  const started = Date.now() - YEAR_MS;
  const step = YEAR_MS / calls;
  let prev = GENESIS_HASH;
  let seq = 0;
  const write = (fields: Partial<AuditRow>, at: string): void => {
    seq += 1;
    const row = { ...EMPTY_ROW, ...fields, seq, at, prev_hash: prev } as Omit<AuditRow, 'hash'>;
    const hash = rowHash(row);
    insert.run(AUDIT_COLUMNS.map((column) => (column === 'hash' ? hash : (row as unknown as Record<string, unknown>)[column])));
    prev = hash;
  };
  const batch = 25_000;
  for (let from = 0; from < calls; from += batch) {
    db.transaction(() => {
      for (let i = from; i < Math.min(calls, from + batch); i++) {
        const agentIndex = Math.floor(next() * AGENTS.length);
        const agent = AGENTS[agentIndex]!;
        const callId = randomUUID();
        const at = new Date(started + i * step).toISOString();
        const done = new Date(started + i * step + 40).toISOString();
        const roll = next();
        const tool = roll < 0.5 || paymentIds.length === 0 ? (paymentIds.length === 0 ? 'create_invoice_payment' : 'get_payment_status') : roll < 0.75 ? 'create_invoice_payment' : roll < 0.85 ? 'list_logs' : 'refund';
        const denied = next() < 0.1;
        const base = { call_id: callId, agent, transport: next() < 0.7 ? 'stdio' : 'http', client_name: pick(['claude-ai', 'cursor-vscode', 'Visual Studio Code', 'claude-code']), tool };
        const invoice = `2026-${Math.floor(next() * 90_000) + 10_000}`;
        let decision: Partial<AuditRow>;
        let outcome: Partial<AuditRow>;
        if (tool === 'create_invoice_payment') {
          const amount = `${Math.floor(next() * 900) + 10}.${String(Math.floor(next() * 100)).padStart(2, '0')}`;
          const paymentId = `tr_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
          decision = { arguments: JSON.stringify({ invoice_id: invoice, amount, currency: 'EUR' }), invoice_id: invoice, amount_value: amount, amount_currency: 'EUR', action: `create a pay link of ${amount} EUR for invoice ${invoice}`, idempotency_key: createHash('sha256').update(callId).digest('hex') };
          outcome = denied ? {} : { action: `created payment ${paymentId}`, invoice_id: invoice, payment_id: paymentId };
          if (!denied) paymentIds.push(paymentId);
        } else if (tool === 'get_payment_status') {
          const paymentId = pick(paymentIds);
          decision = { arguments: JSON.stringify({ payment_id: paymentId }), payment_id: paymentId, action: `read the status of payment ${paymentId}` };
          outcome = denied ? {} : { action: `read payment ${paymentId}: paid`, payment_id: paymentId };
        } else if (tool === 'refund') {
          const paymentId = pick(paymentIds);
          decision = { arguments: JSON.stringify({ payment_id: paymentId, amount: '20.00' }), payment_id: paymentId, amount_value: '20.00', amount_currency: 'EUR', action: `refund 20.00 EUR of payment ${paymentId}`, idempotency_key: createHash('sha256').update(callId).digest('hex') };
          outcome = denied ? {} : { action: `refund re_${callId.slice(0, 10)} of 20.00 EUR is pending`, payment_id: paymentId, refund_id: `re_${callId.slice(0, 10)}` };
        } else {
          decision = { arguments: JSON.stringify({ limit: 50 }), action: 'read the audit log' };
          outcome = denied ? {} : { action: 'returned 50 entries' };
        }
        const policy = { policy_sha256: policyHashes[agentIndex]! };
        if (denied) {
          const message = `The agent "${agent}" may not call ${tool}: its policy does not list it.`;
          write({ ...base, ...decision, ...policy, kind: 'decision', decision: 'denied', reason: 'tool_not_allowed', reason_message: message, rule: `tools.${tool} is not in policies/${agent}.yaml` }, at);
          write({ ...base, kind: 'outcome', outcome: 'error', error_code: 'policy_denied', error_message: message, duration_ms: 0 }, done);
        } else {
          write({ ...base, ...decision, ...policy, kind: 'decision', decision: 'allowed', reason: 'allowed', reason_message: `Allowed by policies/${agent}.yaml.`, rule: `tools.${tool}` }, at);
          write({ ...base, ...outcome, kind: 'outcome', outcome: 'ok', duration_ms: Math.floor(next() * 400) + 20 }, done);
        }
      }
    })();
  }
  db.close();
  // Opening it again puts it back in WAL mode and builds the indexes the server's schema declares.
  openDatabase(path).close();
  return { paymentIds, firstAt: started, lastAt: started + calls * step };
}

const EMPTY_ROW: Record<string, null> = Object.fromEntries(AUDIT_COLUMNS.map((column) => [column, null]));

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
    const cases: { filter: string; args: () => Record<string, unknown> }[] = [
      { filter: 'no filter (newest page)', args: () => ({}) },
      { filter: 'agent', args: () => ({ agent: pick(AGENTS) }) },
      { filter: 'payment', args: () => ({ payment_id: pick(generated.paymentIds) }) },
      { filter: 'time range (1 day)', args: () => window(1) },
      { filter: 'time range (30 days)', args: () => window(30) },
      { filter: 'denied only', args: () => ({ decision: 'denied' }) },
      { filter: 'agent + denied only', args: () => ({ agent: pick(AGENTS), decision: 'denied' }) },
      { filter: 'deep cursor (oldest 10%)', args: () => ({ cursor: encodeCursor(Math.floor(next() * calls * 0.2) + 2) }) },
      { filter: 'agent + deep cursor', args: () => ({ agent: pick(AGENTS), cursor: encodeCursor(Math.floor(next() * calls * 0.2) + 2) }) },
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
    engine.close();

    // The command an auditor runs, start-up included.
    const verifyStarted = performance.now();
    const said = execFileSync(process.execPath, [CLI, 'audit', 'verify', '--db', workspace.db], { encoding: 'utf8' });
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    const verified = /Audit log intact: (\d+) rows/.exec(said);
    if (!verified) throw new Error(`the generated log does not verify: ${said}`);
    const verifiedRows = Number(verified[1]);
    return { calls, agents: AGENTS.length, generateSeconds, queries, verifySeconds, verifiedRows, bytes, bytesPer1000Calls: (bytes / calls) * 1000 };
  } finally {
    workspace.remove();
    rmSync(`${workspace.db}-wal`, { force: true });
  }
}
