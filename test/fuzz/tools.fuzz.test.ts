/**
 * Bad input, fuzzed: property-based arguments for every tool through the real gate (policy, audit log, budgets) on the
 * simulator. Whatever an agent sends: no crash, a result in exactly the declared shape, an invalid_input error that
 * names the field, nothing sent to Mollie for invalid input, and an audit row pair for every call.
 *
 * FUZZ_RUNS sets the number of cases per tool: 2,000 by default, 10,000 in .ci/run.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { z } from 'zod';
import { readConfig } from '../../src/config.js';
import { openEngine, type Engine } from '../../src/engine.js';
import type { MolliePort } from '../../src/mollie/port.js';
import { MollieSimulator } from '../../src/mollie/simulator.js';
import { toolErrorSchema } from '../../src/tool-error.js';
import { TOOLS } from '../../tools/index.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

const POLICY = `agent: fuzzer
rate_limit: { per_minute: 100000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "1000000.00" }
      JPY: { per_call: "100000000" }
    redirect_hosts: [pay.example.com]
  get_payment_status: {}
  refund:
    limits:
      EUR: { per_call: "1000000.00" }
  list_logs: { scope: all }
  cancel_invoice_payment: {}
`;

let directory: string;
const mollieCalls: string[] = [];
const paidPayments: string[] = [];
/** Payment links made through the gate, so cancel and status cases reach links this server knows. */
const links: string[] = [];
const engines: Engine[] = [];

/** The simulator behind a counter: every request that would have reached Mollie is noted. */
function counted(port: MollieSimulator): MolliePort {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        mollieCalls.push(String(property));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'mim-fuzz-'));
  writeFileSync(join(directory, 'fuzzer.yaml'), POLICY);
});

afterAll(() => {
  for (const engine of engines) engine.close();
  rmSync(directory, { recursive: true, force: true });
});

/** A fresh server for one tool's fuzzing: its own simulator with five paid payments, its own log. */
async function freshEngine(): Promise<Engine> {
  const simulator = new MollieSimulator();
  paidPayments.length = 0;
  for (let i = 0; i < 5; i += 1) {
    const payment = await simulator.createPayment({ amount: { value: '100000.00', currency: 'EUR' }, description: `Fuzz ${i}`, metadata: { invoice_id: `FUZZ-${i}` } }, { idempotencyKey: `fuzz-${i}` });
    simulator.simulate(payment.id, 'paid');
    paidPayments.push(payment.id);
  }
  // The gate, audit log and budgets are the real ones; only the file is in memory, so tens of thousands of calls
  // take seconds rather than waiting on fsync.
  // Every refused call keeps its own rows here (the property checks them), however many a minute.
  const config = readConfig({ MOLLIE_MCP_POLICIES: directory, MOLLIE_MCP_DB: ':memory:', MOLLIE_MCP_REFUSED_CALLS_PER_MINUTE: '1000000' });
  const engine = openEngine(config, { logger: pino({ level: 'silent' }), env: {}, mollie: counted(simulator) });
  engines.push(engine);
  links.length = 0;
  for (let i = 0; i < 3; i += 1) {
    const made = await engine.gate.call({ caller: { agent: 'fuzzer', token: null }, transport: 'in-process', clientName: 'fuzz' }, 'create_invoice_payment', { invoice_id: `LINK-${i}`, amount: '25.00' });
    links.push(String(made.structuredContent.payment_link_id));
  }
  return engine;
}

// ---- what an agent might send

const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '\ud800', 'NaN', 'Infinity', '-0', '1e3', '0x10', '10,00', '١٢٣', "'; DROP TABLE audit_log; --", '<script>', '../../etc/passwd', '__proto__', 'constructor', 'prototype'),
  fc.nat().map((n) => 'x'.repeat(n % 5 === 0 ? 100_000 : n % 300)),
);
const amountLike = fc.oneof(
  fc.constantFrom('10.00', '0.01', '1', '120.5', '0', '0.00', '-1.00', '1.001', '999999999999.99', '10.0', '007.00', ' 10.00', '10.00 ', '1e2'),
  fc.tuple(fc.nat({ max: 100_000 }), fc.nat({ max: 999 })).map(([whole, cents]) => `${whole}.${String(cents).padStart(2, '0')}`),
  nasty,
);
const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'value' },
    nasty,
    amountLike,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(nasty, fc.constantFrom('__proto__', 'constructor', 'prototype')), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const fieldValues: Record<string, fc.Arbitrary<unknown>> = {
  invoice_id: fc.oneof(fc.constantFrom('2026-114', 'INV/7', 'a'.repeat(64), 'a'.repeat(65), 'FUZZ-1'), nasty, anyValue),
  amount: fc.oneof(amountLike, anyValue),
  amount_already_paid: fc.oneof(amountLike, anyValue),
  currency: fc.oneof(fc.constantFrom('EUR', 'JPY', 'USD', 'eur', 'XXX', ''), nasty, anyValue),
  description: fc.oneof(fc.string({ maxLength: 300 }), nasty, anyValue),
  redirect_url: fc.oneof(fc.constantFrom('https://pay.example.com/thanks', 'http://pay.example.com/', 'https://evil.example/', 'javascript:alert(1)'), nasty, anyValue),
  locale: fc.oneof(fc.constantFrom('nl_NL', 'en_US', 'xx', 'nl-NL'), nasty, anyValue),
  kind: fc.oneof(fc.constantFrom('payment_link', 'checkout', 'link', 'PAYMENT_LINK', ''), nasty, anyValue),
  expires_at: fc.oneof(
    fc.constantFrom('2027-01-31', '2027-02-30', '2027-13-01', '2026-01-01', '2099-12-31', '2027-01-31T17:00:00+01:00', '2027-01-31T17:00:00', '2027-01-31T25:00:00Z', 'tomorrow', ''),
    fc.integer({ min: -400, max: 400 }).map((days) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10)),
    fc.integer({ min: -120, max: 120 }).map((minutes) => new Date(Date.now() + minutes * 60_000).toISOString()),
    nasty,
    anyValue,
  ),
  payment_link_id: fc.oneof(fc.nat({ max: 2 }).map((index) => links[index] ?? 'pl_missing'), fc.constantFrom('pl_doesNotExist', 'pl_', 'tr_abc', 'pl_' + 'a'.repeat(65)), nasty, anyValue),
  payment_id: fc.oneof(fc.nat({ max: 4 }).map((index) => paidPayments[index] ?? 'tr_missing'), fc.constantFrom('tr_doesNotExist', 'tr_', 're_abc', 'tr_' + 'a'.repeat(65)), nasty, anyValue),
  approval_id: fc.oneof(fc.constantFrom('ap_AAAAAAAAAAAAAAAAAAAAAAAA', 'ap_short'), nasty, anyValue),
  allow_repeat: fc.oneof(fc.boolean(), anyValue),
  agent: fc.oneof(fc.constantFrom('fuzzer', 'someone'), nasty, anyValue),
  tool: fc.oneof(fc.constantFrom('refund', 'nope'), nasty, anyValue),
  decision: fc.oneof(fc.constantFrom('allowed', 'denied', 'maybe'), anyValue),
  outcome: fc.oneof(fc.constantFrom('ok', 'error', 'pending', 'unknown', 'fine'), anyValue),
  since: fc.oneof(fc.constantFrom('2026-11-21T00:00:00Z', '2026-13-01', 'yesterday'), nasty, anyValue),
  until: fc.oneof(fc.constantFrom('2030-01-01T00:00:00Z', '0000-00-00T00:00:00Z'), nasty, anyValue),
  limit: fc.oneof(fc.integer({ min: -5, max: 300 }), fc.double(), anyValue),
  cursor: fc.oneof(fc.constantFrom('c2VxOjE', 'seq:1', ''), nasty, anyValue),
};

const validAmount = fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.nat({ max: 99 })).map(([whole, cents]) => `${whole}.${String(cents).padStart(2, '0')}`);
const paidPayment = fc.nat({ max: 4 }).map((index) => paidPayments[index] ?? 'tr_missing');

/** Arguments a well-behaved agent would send, so a good share of the cases go all the way through. */
const VALID: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  create_invoice_payment: fc.record(
    {
      invoice_id: fc.stringMatching(/^[A-Za-z0-9._/-]{1,64}$/),
      amount: validAmount,
      currency: fc.constant('EUR'),
      description: fc.stringMatching(/^[^\u0000-\u001f\u007f]{1,255}$/),
      redirect_url: fc.constantFrom('https://pay.example.com/thanks', 'https://pay.example.com/'),
    },
    { requiredKeys: ['invoice_id', 'amount'] },
  ).chain((base) =>
    fc.oneof(
      fc.record({ expires_at: fc.integer({ min: 2, max: 364 }).map((days) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10)) }, { requiredKeys: [] }).map((extra) => ({ ...base, ...extra })),
      fc.record({ kind: fc.constant('checkout'), locale: fc.constantFrom('nl_NL', 'en_US', 'de_DE') }, { requiredKeys: ['kind'] }).map((extra) => ({ ...base, ...extra })),
    ),
  ),
  cancel_invoice_payment: fc.oneof(
    fc.nat({ max: 3 }).map((n) => ({ invoice_id: `LINK-${n}` })),
    fc.nat({ max: 2 }).map((index) => ({ payment_link_id: links[index] ?? 'pl_missing' })),
    paidPayment.map((id) => ({ payment_id: id })),
  ),
  get_payment_status: fc.oneof(
    paidPayment.map((id) => ({ payment_id: id })),
    fc.nat({ max: 6 }).map((n) => ({ invoice_id: n % 2 === 0 ? `FUZZ-${n}` : `LINK-${n % 3}` })),
    fc.nat({ max: 2 }).map((index) => ({ payment_link_id: links[index] ?? 'pl_missing' })),
  ),
  refund: fc.record({ payment_id: paidPayment, amount: fc.integer({ min: 1, max: 50 }).map((n) => `${n}.00`), allow_repeat: fc.boolean(), description: fc.constantFrom('Goodwill', 'Returned item') }, { requiredKeys: ['payment_id', 'amount'] }),
  list_logs: fc.record(
    { limit: fc.integer({ min: 1, max: 200 }), decision: fc.constantFrom('allowed', 'denied'), outcome: fc.constantFrom('ok', 'error', 'pending', 'unknown'), agent: fc.constant('fuzzer'), payment_id: paidPayment, invoice_id: fc.constantFrom('LINK-0', 'FUZZ-1') },
    { requiredKeys: [] },
  ),
};

/** Arguments for a tool: valid ones, its own fields with hostile values, strangers and polluting keys, anything. */
function argumentsFor(tool: string, fields: string[]): fc.Arbitrary<unknown> {
  const own = fc.record(Object.fromEntries(fields.map((field) => [field, fieldValues[field] ?? anyValue])), { requiredKeys: [] });
  const withStrangers = fc.tuple(own, fc.dictionary(fc.oneof(nasty, fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString')), anyValue, { maxKeys: 2 })).map(([a, b]) => {
    const merged: Record<string, unknown> = {};
    for (const [key, value] of [...Object.entries(a), ...Object.entries(b)]) Object.defineProperty(merged, key, { value, enumerable: true, configurable: true, writable: true });
    return merged;
  });
  return fc.oneof(
    { weight: 4, arbitrary: VALID[tool]! },
    { weight: 4, arbitrary: own },
    { weight: 1, arbitrary: withStrangers },
    { weight: 1, arbitrary: fc.oneof(anyValue, fc.json().map((text) => JSON.parse(text) as unknown)) },
  );
}

const FIELDS: Record<string, string[]> = {
  create_invoice_payment: ['invoice_id', 'amount', 'currency', 'amount_already_paid', 'description', 'redirect_url', 'kind', 'expires_at', 'locale'],
  get_payment_status: ['payment_id', 'payment_link_id', 'invoice_id'],
  refund: ['payment_id', 'amount', 'description', 'approval_id', 'allow_repeat'],
  list_logs: ['agent', 'tool', 'decision', 'outcome', 'payment_id', 'payment_link_id', 'invoice_id', 'since', 'until', 'limit', 'cursor'],
  cancel_invoice_payment: ['invoice_id', 'payment_link_id', 'payment_id'],
};

function auditRowsOf(engine: Engine, callId: string): { kind: string }[] {
  return engine.db.prepare('SELECT kind FROM audit_log WHERE call_id = ? ORDER BY seq').all(callId) as { kind: string }[];
}

describe(`fuzzing every tool's arguments through the gate (${RUNS} cases per tool)`, () => {
  for (const tool of TOOLS) {
    it(tool.name, async () => {
      const success = tool.output.extend({ audit_id: z.string() });
      const failure = z.strictObject({ error: toolErrorSchema, audit_id: z.string() });
      const seen = { ok: 0, invalid: 0, denied: 0, other: 0 };
      const engine = await freshEngine();
      await fc.assert(
        fc.asyncProperty(argumentsFor(tool.name, FIELDS[tool.name]!), async (args) => {
          const before = mollieCalls.length;
          const reply = await engine.gate.call({ caller: { agent: 'fuzzer', token: null }, transport: 'in-process', clientName: 'fuzz' }, tool.name, args);
          // Exactly the declared shape, as a strict client would check it.
          if (reply.isError) failure.parse(reply.structuredContent);
          else success.parse(reply.structuredContent);
          expect(reply.text.length).toBeLessThan(200_000);
          const auditId = String(reply.structuredContent.audit_id);
          const kinds = auditRowsOf(engine, auditId).map((row) => row.kind);
          expect(kinds.filter((kind) => kind !== 'event')).toEqual(['decision', 'outcome']);
          const error = reply.structuredContent.error as z.infer<typeof toolErrorSchema> | undefined;
          if (!error) seen.ok += 1;
          else if (error.code === 'invalid_input') {
            seen.invalid += 1;
            expect(mollieCalls.length).toBe(before);
            if (args !== null && typeof args === 'object' && !Array.isArray(args)) expect(error.field, error.message).toEqual(expect.any(String));
            expect(error.message.length).toBeGreaterThan(15);
          } else if (error.code === 'policy_denied') seen.denied += 1;
          else seen.other += 1;
          // Prototype pollution would show on every object.
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          expect(Object.keys(Object.prototype)).toEqual([]);
        }),
        { numRuns: RUNS },
      );
      console.log(`${tool.name}: ${RUNS} cases: ${seen.ok} ok, ${seen.invalid} invalid_input, ${seen.denied} policy_denied, ${seen.other} other errors (not_found, conflict, mollie_rejected)`);
      // The cases are not all thrown out at the door: some pass validation and reach the tool.
      expect(seen.ok + seen.other + seen.denied).toBeGreaterThan(0);
      expect(engine.audit.verify().ok).toBe(true);
    }, 600_000);
  }
});
