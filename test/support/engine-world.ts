/**
 * An engine in this process on the simulator, behind a port that lets a test act before or after any Mollie call
 * (hold it, fail it, lose its answer), with an injected clock: the gate, the tools, the audit log and a real SQLite
 * file, and nothing else.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { readConfig } from '../../src/config.js';
import { openEngine, type Engine } from '../../src/engine.js';
import type { GateReply } from '../../src/gate.js';
import type { MolliePort } from '../../src/mollie/port.js';
import { MollieSimulator } from '../../src/mollie/simulator.js';

export const POLICY = (agent: string, extra = '', tools = '') => `agent: ${agent}
rate_limit: { per_minute: 100000 }
${extra}tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "1000.00", per_day: "1000000.00" }
  get_payment_status: {}
  cancel_invoice_payment: {}
  refund:
    limits:
      EUR: { per_call: "1000.00" }
  list_logs: { scope: all }
${tools}`;

type Hook = (...args: unknown[]) => Promise<void> | void;
const PORT_METHODS = new Set([
  'createPayment', 'getPayment', 'cancelPayment', 'createRefund', 'listRefunds', 'listRecentPayments',
  'createPaymentLink', 'getPaymentLink', 'listPaymentLinkPayments', 'archivePaymentLink', 'listRecentPaymentLinks', 'listPaymentLinksSince', 'listPaymentsSince',
]);

export interface World {
  simulator: MollieSimulator;
  port: MolliePort;
  /** Runs before the simulator's method; may throw to fail the call, or wait to hold it. */
  before: Record<string, Hook | undefined>;
  /** Runs after it, with its result last; may throw to lose the answer. */
  after: Record<string, Hook | undefined>;
  /** Every port method called, in order. */
  calls: string[];
  engine: Engine;
  directory: string;
  now: { ms: number };
  call(agent: string, name: string, args: Record<string, unknown>): Promise<GateReply>;
  /** Replaces a policy file as an editor does (a new file renamed over the old one). */
  writePolicy(agent: string, yaml: string): void;
  /** A second engine on the same database file, as another server process would be. */
  another(): Engine;
  close(): void;
}

export function makeWorld(policies: Record<string, string> = { clerk: POLICY('clerk') }, startMs = Date.parse('2026-12-01T09:00:00Z')): World {
  const now = { ms: startMs };
  const simulator = new MollieSimulator({ now: () => new Date(now.ms) });
  const before: World['before'] = {};
  const after: World['after'] = {};
  const calls: string[] = [];
  const port = new Proxy(simulator, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value === 'function' && typeof property === 'string' && PORT_METHODS.has(property)) {
        return async (...args: unknown[]) => {
          calls.push(property);
          await before[property]?.(...args);
          const result = await (value as (...a: unknown[]) => unknown).apply(target, args);
          await after[property]?.(...args, result);
          return result;
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as unknown as MolliePort;
  const directory = mkdtempSync(join(tmpdir(), 'mim-world-'));
  const writePolicy = (agent: string, yaml: string): void => {
    const temporary = join(directory, `.${agent}.tmp`);
    writeFileSync(temporary, yaml);
    renameSync(temporary, join(directory, `${agent}.yaml`));
  };
  for (const [agent, yaml] of Object.entries(policies)) writePolicy(agent, yaml);
  const engines: Engine[] = [];
  const open = (): Engine => {
    const config = readConfig({ MOLLIE_MCP_POLICIES: directory, MOLLIE_MCP_DB: join(directory, 'audit.db') });
    const engine = openEngine(config, { logger: pino({ level: 'silent' }), env: {}, mollie: port, clock: () => new Date(now.ms), serving: true });
    engines.push(engine);
    return engine;
  };
  let first: Engine;
  try {
    first = open();
  } catch (error) {
    // A world whose policies are refused (a test of that) leaves no folder behind.
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  const world: World = {
    simulator,
    port,
    before,
    after,
    calls,
    directory,
    now,
    engine: first,
    call: (agent, name, args) => world.engine.gate.call({ caller: { agent, token: null }, transport: 'in-process', clientName: 'test', confirm: null }, name, args),
    writePolicy,
    another: open,
    close: () => {
      for (const engine of engines) engine.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
  return world;
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** The links at the simulator for a description that a customer could pay now. */
export async function payableLinks(world: World, description: string) {
  return (await world.simulator.listRecentPaymentLinks(250)).filter((link) => link.description === description && world.simulator.linkRefusal(link.id) === null);
}
