/**
 * What the gate decides, and what its decision row says: the rate limit before anything reaches Mollie and on the real
 * clock, the policy in force at the moment of the decision, which payments an agent may act on, and a call that cannot
 * be done never reading as allowed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { deferred, makeWorld, POLICY, type World } from '../support/engine-world.js';

let world: World;
afterEach(() => world?.close());

const rows = (callId: string) =>
  world.engine.db.prepare('SELECT kind, decision, reason, outcome, error_code, amount_value, amount_currency, policy_sha256 FROM audit_log WHERE call_id = ? ORDER BY seq').all(callId) as Record<string, unknown>[];
const errorOf = (reply: { structuredContent: Record<string, unknown> }) => reply.structuredContent.error as { code: string; reason?: string; message: string };

async function paid(amount = '100.00'): Promise<string> {
  const payment = await world.simulator.createPayment({ amount: { value: amount, currency: 'EUR' }, description: 'Invoice X' }, { idempotencyKey: `paid-${Math.random()}` });
  world.simulator.simulate(payment.id, 'paid');
  return payment.id;
}

describe('the rate limit', () => {
  it('is checked before anything reaches Mollie, and calls that fail while preparing count towards it', async () => {
    world = makeWorld({ limited: POLICY('limited').replace('per_minute: 100000', 'per_minute: 3') });
    // Three refunds of payments Mollie does not have: each reads Mollie once and fails.
    for (let i = 0; i < 3; i += 1) expect(errorOf(await world.call('limited', 'refund', { payment_id: `tr_missing${i}` })).code).toBe('not_found');
    const before = world.calls.length;
    for (let i = 0; i < 20; i += 1) {
      const reply = await world.call('limited', 'refund', { payment_id: `tr_missing${i}` });
      expect(errorOf(reply)).toMatchObject({ code: 'policy_denied', reason: 'rate_limit_exceeded' });
    }
    expect(world.calls.length).toBe(before);
  });

  it('counts on the real clock: a clock stepping back an hour does not lock an agent out', async () => {
    world = makeWorld({ limited: POLICY('limited').replace('per_minute: 100000', 'per_minute: 2') });
    const id = await paid();
    for (let i = 0; i < 2; i += 1) expect((await world.call('limited', 'get_payment_status', { payment_id: id })).isError).toBe(false);
    expect(errorOf(await world.call('limited', 'get_payment_status', { payment_id: id })).reason).toBe('rate_limit_exceeded');
    world.now.ms -= 3_600_000;
    const after = await world.call('limited', 'get_payment_status', { payment_id: id });
    expect(after.isError).toBe(false);
    // The log still reads in order: the row is stamped no earlier than the one before it.
    const stamps = world.engine.db.prepare('SELECT at FROM audit_log ORDER BY seq').all() as { at: string }[];
    expect(stamps.map((row) => row.at)).toEqual([...stamps.map((row) => row.at)].sort());
  });
});

describe('a call that cannot be done', () => {
  it('never reads as allowed: not found while preparing is a denied decision with its reason', async () => {
    world = makeWorld();
    const reply = await world.call('clerk', 'refund', { payment_id: 'tr_doesNotExist1', amount: '5.00' });
    expect(errorOf(reply).code).toBe('not_found');
    expect(rows(String(reply.structuredContent.audit_id))).toEqual([
      expect.objectContaining({ kind: 'decision', decision: 'denied', reason: 'precondition_failed', amount_value: '5.00', amount_currency: null }),
      expect.objectContaining({ kind: 'outcome', outcome: 'error', error_code: 'not_found' }),
    ]);
    const [entry] = (await world.call('clerk', 'list_logs', { limit: 1, tool: 'refund' })).structuredContent.entries as { decision: string; summary: string }[];
    expect(entry).toMatchObject({ decision: 'denied' });
    expect(entry!.summary).toMatch(/^clerk asked to refund 5\.00 of payment tr_doesNotExist1: not done, it cannot be done as asked\. Mollie has no such resource/);
  });

  it('a refund over the per-call cap and over what remains is reported as over the cap', async () => {
    world = makeWorld({ clerk: POLICY('clerk').replace('EUR: { per_call: "1000.00" }', 'EUR: { per_call: "100.00" }') });
    const id = await paid('100.00');
    await world.simulator.createRefund(id, { amount: { value: '20.00', currency: 'EUR' } }, { idempotencyKey: 'first' });
    const reply = await world.call('clerk', 'refund', { payment_id: id, amount: '150.00' });
    expect(errorOf(reply)).toMatchObject({ code: 'policy_denied', reason: 'per_call_exceeded' });
    expect(rows(String(reply.structuredContent.audit_id))[0]).toMatchObject({ decision: 'denied', reason: 'per_call_exceeded', amount_value: '150.00', amount_currency: 'EUR' });
    // Within the cap it is the refund itself that cannot be done.
    const within = await world.call('clerk', 'refund', { payment_id: id, amount: '90.00' });
    expect(errorOf(within)).toMatchObject({ code: 'conflict', message: expect.stringMatching(/more than the 80\.00 EUR/) });
    expect(rows(String(within.structuredContent.audit_id))[0]).toMatchObject({ decision: 'denied', reason: 'precondition_failed' });
  });
});

describe('the policy in force', () => {
  it('decides on the policy as it is at the decision, not as it was when the call began', async () => {
    world = makeWorld();
    const id = await paid('500.00');
    const hold = deferred();
    const reading = deferred();
    world.before.getPayment = async () => {
      reading.resolve();
      await hold.promise;
    };
    const call = world.call('clerk', 'refund', { payment_id: id, amount: '300.00' });
    await reading.promise;
    // While Mollie is being read, the operator lowers the cap.
    world.writePolicy('clerk', POLICY('clerk').replace('EUR: { per_call: "1000.00" }', 'EUR: { per_call: "100.00" }'));
    hold.resolve();
    const reply = await call;
    expect(errorOf(reply)).toMatchObject({ code: 'policy_denied', reason: 'per_call_exceeded' });
    expect(errorOf(reply).message).toContain('100.00 EUR');
    expect(await world.simulator.listRefunds(id)).toEqual([]);
  });

  it('payments: this_server keeps an agent to payments this server made, without asking Mollie about others', async () => {
    world = makeWorld({ clerk: POLICY('clerk', '', '').replace('EUR: { per_call: "1000.00" }\n', 'EUR: { per_call: "1000.00" }\n    payments: this_server\n') });
    const foreign = await paid();
    const before = world.calls.length;
    const reply = await world.call('clerk', 'refund', { payment_id: foreign, amount: '10.00' });
    expect(errorOf(reply)).toMatchObject({ code: 'policy_denied', reason: 'payment_not_created_here' });
    expect(world.calls.length).toBe(before);
    const own = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'OWN-1', amount: '40.00', kind: 'checkout' });
    world.simulator.simulate(String(own.structuredContent.payment_id), 'paid');
    expect((await world.call('clerk', 'refund', { payment_id: String(own.structuredContent.payment_id), amount: '10.00' })).isError).toBe(false);
  });
});

describe('the log holds', () => {
  it('one outcome per call and no replaced rows, even for someone with the file', async () => {
    world = makeWorld();
    const reply = await world.call('clerk', 'list_logs', {});
    const callId = String(reply.structuredContent.audit_id);
    expect(() => world.engine.audit.append({ call_id: callId, kind: 'outcome', outcome: 'ok' })).toThrow(/UNIQUE/);
    const db = new Database(join(world.directory, 'audit.db'));
    try {
      expect(() => db.prepare("INSERT OR REPLACE INTO audit_log (seq, call_id, kind, at, prev_hash, hash) VALUES (1, 'x', 'event', '2026-01-01', '0', '0')").run()).toThrow(/append-only/);
    } finally {
      db.close();
    }
    expect(world.engine.audit.verify()).toMatchObject({ ok: true });
  });

  it('no row below the chain: refused by a trigger, and caught by verify when the triggers were dropped (hostile pass, 0.5.0)', async () => {
    world = makeWorld();
    await world.call('clerk', 'list_logs', {});
    const db = new Database(join(world.directory, 'audit.db'));
    const forge = db.prepare("INSERT INTO audit_log (seq, call_id, kind, at, agent, tool, decision, reason, action, prev_hash, hash) VALUES (0, 'forged', 'decision', '2026-12-01T08:00:00.000Z', 'clerk', 'refund', 'allowed', 'approved', 'refund 900.00 EUR', 'x', 'y')");
    try {
      expect(() => forge.run()).toThrow(/a row goes after the last one/);
      db.exec('DROP TRIGGER audit_log_in_order');
      forge.run();
    } finally {
      db.close();
    }
    expect(world.engine.audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 0, problem: expect.stringMatching(/below the chain's first row/) } });
  });
});

describe('a flood of refused calls from an agent holding a valid token (hostile pass, 0.5.0)', () => {
  it('writes rows for the first 60 a minute, then counts the rest in one summary event; nothing reaches Mollie', async () => {
    world = makeWorld({ clerk: POLICY('clerk'), tiny: 'agent: tiny\ntools:\n  get_payment_status: {}\n' });
    const before = world.calls.length;
    const replies = [];
    for (let i = 0; i < 100; i += 1) replies.push(await world.call('tiny', 'refund', { payment_id: 'tr_abc12345', amount: '1.00', description: 'x'.repeat(200) }));
    expect(replies.every((reply) => (reply.structuredContent.error as { reason: string }).reason === 'tool_not_allowed')).toBe(true);
    expect(String((replies[99]!.structuredContent.error as { message: string }).message)).toMatch(/over 60 refused calls a minute: this one is counted in a summary event/);
    expect(world.calls.length).toBe(before);
    const rows = () => world.engine.db.prepare("SELECT count(*) AS n FROM audit_log WHERE agent = 'tiny' AND kind = 'decision'").get() as { n: number };
    expect(rows().n).toBe(60);
    world.engine.gate.close();
    const summary = world.engine.db.prepare("SELECT agent, reason_message FROM audit_log WHERE reason = 'refused_calls_summarised'").all() as { agent: string; reason_message: string }[];
    expect(summary).toEqual([{ agent: 'tiny', reason_message: expect.stringMatching(/^40 tool call\(s\) by agent "tiny" .* \(tool_not_allowed x40\)/) }]);
    // Another agent is not held back by it.
    expect((await world.call('clerk', 'refund', { payment_id: 'tr_abc12345', amount: '1.00' })).structuredContent.error).toMatchObject({ code: 'not_found' });
  });
});
