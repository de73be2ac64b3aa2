/**
 * 1. Gate overhead: the same tool call in process, through the full gate (validation, policy, decision and outcome
 * rows, budget reservation) and straight to the tool's own prepare and run, both on the simulator.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { TOOLS } from '../tools/index.js';
import { readConfig } from '../src/config.js';
import { openEngine, type Engine } from '../src/engine.js';
import { listCalls } from '../src/audit/call-entries.js';
import { immediate } from '../src/database.js';
import { OpenReads } from '../src/open-reads.js';
import type { ToolContext, ToolDefinition } from '../src/tool-definition.js';
import { REDACTED_PATHS } from '../src/log.js';
import { summarize, type Summary } from './stats.js';
import { createBenchWorkspace } from './workspace.js';

/** The gate's own database writes for one read-only call, alone: the floor under its overhead on this disk. */
export interface WritesFloor {
  calls: number;
  latency: Summary;
}

export interface OverheadResult {
  tool: string;
  gate: Summary;
  direct: Summary;
  /** p50(gate) - p50(direct), microseconds. */
  overheadP50: number;
  overheadP99: number;
  ratioP50: number;
}

const ORIGIN = { caller: { agent: 'bench-agent', token: null }, transport: 'in-process' as const, clientName: 'bench', confirm: null };

function tool(name: string): ToolDefinition {
  const found = TOOLS.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no tool ${name}`);
  return found;
}

async function measure(engine: Engine, name: string, argsFor: (i: number) => Record<string, unknown>, iterations: number): Promise<OverheadResult> {
  const definition = tool(name);
  const context = (callId: string): ToolContext => ({
    mollie: engine.mollie,
    payments: engine.payments,
    locks: engine.gate.locks,
    clock: () => new Date(),
    auditCalls: { list: (filter, limit, beforeSeq) => listCalls(engine.db, filter, limit, beforeSeq) },
    caller: { agent: 'bench-agent', logScope: 'all' },
    callId,
    settings: { redirectUrl: null, webhookUrl: null, linkValidDays: 30 },
  });
  const viaGate = async (i: number): Promise<number> => {
    const started = performance.now();
    const reply = await engine.gate.call(ORIGIN, name, argsFor(i));
    const took = performance.now() - started;
    if (reply.isError) throw new Error(`${name} failed through the gate: ${reply.text}`);
    return took;
  };
  const direct = async (i: number): Promise<number> => {
    const started = performance.now();
    const args = definition.input.parse(argsFor(i));
    const ctx = context(`direct-${i}`);
    const plan = await definition.prepare(args, ctx);
    await definition.run(plan, ctx);
    return performance.now() - started;
  };
  const warmup = Math.min(500, iterations);
  for (let i = 0; i < warmup; i++) {
    await viaGate(i);
    await direct(i);
  }
  const gate: number[] = [];
  const straight: number[] = [];
  // Alternating, so a noisy neighbour slows both sides alike.
  for (let i = warmup; i < warmup + iterations; i++) {
    gate.push((await viaGate(i)) * 1000);
    straight.push((await direct(i + iterations * 10)) * 1000);
  }
  const g = summarize(gate);
  const d = summarize(straight);
  return { tool: name, gate: g, direct: d, overheadP50: g.p50 - d.p50, overheadP99: g.p99 - d.p99, ratioP50: g.p50 / d.p50 };
}

/**
 * Two BEGIN IMMEDIATE commits per call, as the gate makes them for a call that moves no money: decision row and its
 * open_reads mark, then outcome row and the mark's removal. Nothing else: no validation, policy, hashing of arguments
 * or logging beyond what appending the rows needs.
 */
function measureWrites(engine: Engine, iterations: number): WritesFloor {
  const openReads = new OpenReads(engine.db);
  const samples: number[] = [];
  for (let i = 0; i < iterations + 500; i++) {
    const callId = randomUUID();
    const base = { call_id: callId, agent: 'bench-agent', transport: 'in-process', client_name: 'bench', tool: 'get_payment_status' };
    const started = performance.now();
    immediate(engine.db, () => {
      engine.audit.append({ ...base, kind: 'decision', decision: 'allowed', reason: 'allowed', payment_id: 'tr_floor', arguments: '{"payment_id":"tr_floor"}' });
      openReads.open(callId, 'bench', new Date().toISOString());
    }, 'normal');
    immediate(engine.db, () => {
      engine.audit.append({ ...base, kind: 'outcome', outcome: 'ok', payment_id: 'tr_floor', duration_ms: 0 });
      openReads.close(callId);
    }, 'normal');
    if (i >= 500) samples.push((performance.now() - started) * 1000);
  }
  return { calls: iterations, latency: summarize(samples) };
}

/** `extraEnv`: another store (MOLLIE_MCP_DATABASE_URL, benchmark 6); `only`: measure just these tools. */
export async function gateOverhead(iterations = 5000, extraEnv: Record<string, string> = {}, only: string[] | null = null): Promise<{ results: OverheadResult[]; writes: WritesFloor }> {
  const workspace = createBenchWorkspace();
  // The real logger, writing to /dev/null: formatting a log line per call is part of the gate's cost.
  const logger = pino({ name: 'mollie-invoice-mcp', level: 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, pino.destination({ dest: '/dev/null', sync: true }));
  const env = workspace.env(extraEnv);
  const engine = openEngine(readConfig(env, { simulator: true }), { logger, env, serving: true });
  try {
    const created = await engine.gate.call(ORIGIN, 'create_invoice_payment', { invoice_id: 'BENCH-1', amount: '10.00', kind: 'checkout' });
    const paymentId = String(created.structuredContent.payment_id);
    const results: OverheadResult[] = [];
    results.push(await measure(engine, 'get_payment_status', () => ({ payment_id: paymentId }), iterations));
    if (only !== null) return { results, writes: { calls: 0, latency: summarize([0]) } };
    results.push(await measure(engine, 'create_invoice_payment', (i) => ({ invoice_id: `BENCH-C-${i}`, amount: '25.00' }), Math.round(iterations / 5)));
    return { results, writes: measureWrites(engine, iterations) };
  } finally {
    engine.close();
    workspace.remove();
  }
}
