/**
 * The story of a payment, a payment link or an invoice, built from a real log the engine wrote on the simulator: a pay
 * link made, paid through (with Mollie's webhook), read and refunded, next to another invoice's calls that must stay
 * out of it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { buildStory, storyLines, type Story } from '../../src/audit/story.js';
import { openDatabase, type SqliteDatabase } from '../../src/database.js';
import { errorFromMollieProblem } from '../../src/mollie/errors.js';
import { MollieWebhook } from '../../src/webhooks/mollie-webhook.js';
import { makeWorld, POLICY, type World } from '../support/engine-world.js';

let world: World | undefined;
afterEach(() => {
  world?.close();
  world = undefined;
});

type Reply = Awaited<ReturnType<World['call']>>;
const content = (reply: Reply) => reply.structuredContent as Record<string, any>;
const CONFIRM_ABOVE = POLICY('clerk').replace('EUR: { per_call: "1000.00" }\n  list_logs', 'EUR: { per_call: "1000.00", confirm_above: "50.00" }\n  list_logs');

/** An invoice paid through its link, the webhook, a status read and a refund; returns its ids. */
async function paidAndRefunded(w: World, invoice: string): Promise<{ linkId: string; paymentId: string; refundId: string; calls: string[] }> {
  const made = content(await w.call('clerk', 'create_invoice_payment', { invoice_id: invoice, amount: '100.00' }));
  const linkId = String(made.payment_link_id);
  const paid = w.simulator.payThroughLink(linkId, 'paid');
  const webhook = new MollieWebhook({ mollie: w.port, payments: w.engine.payments, audit: w.engine.audit, logger: pino({ level: 'silent' }), clock: () => new Date(w.now.ms) });
  w.now.ms += 1000;
  const hook = await webhook.receive(paid.id, 'mollie');
  w.now.ms += 1000;
  const status = content(await w.call('clerk', 'get_payment_status', { payment_link_id: linkId }));
  w.now.ms += 1000;
  const refund = content(await w.call('clerk', 'refund', { payment_id: paid.id, amount: '20.00' }));
  return { linkId, paymentId: paid.id, refundId: String(refund.refund_id), calls: [String(made.audit_id), hook.auditId, String(status.audit_id), String(refund.audit_id)] };
}

const callIds = (story: Story | null) => story!.entries.map((entry) => entry.call_id);
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e]/;

describe('the story of a payment, its link and its invoice', () => {
  it('shows the same calls, in order, with decision, rule and policy hash, whichever id it is asked for', async () => {
    world = makeWorld();
    const other = await paidAndRefunded(world, 'INV-OTHER');
    world.now.ms += 60_000;
    const mine = await paidAndRefunded(world, 'INV-1');
    world.now.ms += 1000;
    const denied = content(await world.call('clerk', 'refund', { payment_id: mine.paymentId, amount: '2000.00' }));
    // Another invoice's call after this one's, so nothing leaks in from either side.
    await world.call('clerk', 'get_payment_status', { invoice_id: 'INV-OTHER' });

    const byPayment = buildStory(world.engine.db, mine.paymentId)!;
    const byLink = buildStory(world.engine.db, mine.linkId)!;
    const byInvoice = buildStory(world.engine.db, 'INV-1')!;
    const expected = [...mine.calls, String(denied.audit_id)];
    for (const story of [byPayment, byLink, byInvoice]) {
      expect(callIds(story)).toEqual(expected);
      expect(story.invoice_id).toBe('INV-1');
      expect(story.payment_ids).toEqual([mine.paymentId]);
      expect(story.payment_link_ids).toEqual([mine.linkId]);
      expect(story.approvers).toEqual([]);
      const seqs = story.entries.map((entry) => entry.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      // Nothing of the other invoice.
      expect(JSON.stringify(story)).not.toMatch(new RegExp(`INV-OTHER|${other.paymentId}|${other.linkId}|${other.refundId}`));
    }
    expect([byPayment.kind, byLink.kind, byInvoice.kind]).toEqual(['payment', 'payment_link', 'invoice']);
    expect(byInvoice.entries).toEqual(byPayment.entries);

    const policySha = createHash('sha256').update(readFileSync(join(world.directory, 'clerk.yaml'))).digest('hex');
    const [create, hook, status, refund, refused] = byInvoice.entries;
    expect(create).toMatchObject({
      kind: 'call',
      actor: 'clerk',
      tool: 'create_invoice_payment',
      decision: 'allowed',
      reason: 'allowed',
      rule: expect.stringMatching(/clerk\.yaml: tools\.create_invoice_payment\.limits\.EUR\.per_call = 1000\.00$/),
      policy_sha256: policySha,
      outcome: 'ok',
      amount: { value: '100.00', currency: 'EUR' },
      payment_link_id: mine.linkId,
      invoice_id: 'INV-1',
      summary: expect.stringMatching(/^clerk asked to create a pay link for invoice INV-1 of 100\.00 EUR: allowed; created payment link pl_/),
    });
    expect(hook).toMatchObject({
      kind: 'webhook',
      actor: 'mollie-webhook',
      tool: null,
      decision: 'allowed',
      reason: 'webhook',
      policy_sha256: null,
      outcome: 'ok',
      payment_id: mine.paymentId,
      payment_link_id: mine.linkId,
      summary: `Mollie reported a change to payment ${mine.paymentId}: payment ${mine.paymentId} through payment link ${mine.linkId} (now paid) of invoice INV-1 (100.00 EUR) is paid.`,
    });
    expect(status).toMatchObject({ kind: 'call', tool: 'get_payment_status', decision: 'allowed', policy_sha256: policySha, payment_id: mine.paymentId, payment_link_id: mine.linkId });
    expect(refund).toMatchObject({
      kind: 'call',
      tool: 'refund',
      decision: 'allowed',
      rule: expect.stringMatching(/tools\.refund\.limits\.EUR\.per_call = 1000\.00$/),
      policy_sha256: policySha,
      outcome: 'ok',
      refund_id: mine.refundId,
      amount: { value: '20.00', currency: 'EUR' },
      result: `refund ${mine.refundId} of 20.00 EUR is pending`,
    });
    expect(refused).toMatchObject({ kind: 'call', decision: 'denied', reason: 'per_call_exceeded', outcome: 'error', error_code: 'policy_denied', policy_sha256: policySha, refund_id: null });
    // Each call's decision and outcome are one entry: at the decision's time and seq.
    expect(create!.seq).toBe(world.engine.db.prepare("SELECT seq FROM audit_log WHERE call_id = ? AND kind = 'decision'").pluck().get(create!.call_id));

    const lines = storyLines(byPayment);
    expect(lines[0]).toBe(`Story of payment ${mine.paymentId} (invoice INV-1; payment link ${mine.linkId})`);
    expect(lines[1]).toMatch(/^4 calls, 1 webhook, 0 approval steps, from 2026-12-01 09:01:03 UTC to 2026-12-01 09:01:07 UTC\.$/);
    const text = lines.join('\n');
    expect(text).toContain(`  policy:    ${policySha.slice(0, 12)}`);
    expect(text).not.toContain(policySha);
    expect(text).toMatch(/^\d+\. \(row \d+\) {2}2026-12-01 09:01:06 UTC {2}clerk {2}call refund {2}\[[0-9a-f-]{36}\]$/m);
    expect(text).toMatch(/^ {2}decision: {2}denied \(per_call_exceeded\)$/m);
    expect(text).toMatch(/^ {2}rule: {6}.*tools\.refund\.limits\.EUR\.per_call = 1000\.00$/m);
    expect(text).toMatch(/^\d+\. \(row \d+\) {2}.* {2}mollie-webhook {2}webhook {2}\[/m);
    expect(text).not.toContain('INV-OTHER');
    // The arguments column is never printed raw.
    expect(text).not.toContain('"amount":"2000.00"');
  });

  it('is null for an id nothing mentions, and a payment nobody recorded is still told from the log', async () => {
    world = makeWorld();
    await paidAndRefunded(world, 'INV-1');
    for (const id of ['tr_unknown1', 'pl_unknown1', 'INV-404', 'not an id!']) expect(buildStory(world.engine.db, id)).toBeNull();
    // A payment this server did not make: the webhook's rows still name it.
    const webhook = new MollieWebhook({ mollie: world.port, payments: world.engine.payments, audit: world.engine.audit, logger: pino({ level: 'silent' }) });
    await webhook.receive('tr_someoneElses1', 'mollie');
    const story = buildStory(world.engine.db, 'tr_someoneElses1')!;
    expect(story).toMatchObject({ kind: 'payment', invoice_id: null, payment_ids: ['tr_someoneElses1'], payment_link_ids: [] });
    expect(story.entries).toHaveLength(1);
    expect(story.entries[0]).toMatchObject({ kind: 'webhook', outcome: 'error', error_code: 'not_found' });
  });

  it('an invoice id that looks like a payment id is still found as an invoice', async () => {
    world = makeWorld();
    const made = content(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'tr_2026', amount: '10.00' }));
    const story = buildStory(world.engine.db, 'tr_2026')!;
    expect(story).toMatchObject({ kind: 'invoice', invoice_id: 'tr_2026', payment_link_ids: [made.payment_link_id] });
    expect(callIds(story)).toEqual([made.audit_id]);
  });

  it('names Mollie\'s answer when Mollie refused', async () => {
    world = makeWorld();
    const { paymentId } = await paidAndRefunded(world, 'INV-1');
    world.before.createRefund = () => {
      throw errorFromMollieProblem({ status: 422, title: 'Unprocessable Entity', detail: 'The amount is higher than the amount that remains', field: 'amount' });
    };
    const failed = content(await world.call('clerk', 'refund', { payment_id: paymentId, amount: '30.00' }));
    const entry = buildStory(world.engine.db, paymentId)!.entries.find((candidate) => candidate.call_id === failed.audit_id)!;
    expect(entry).toMatchObject({ decision: 'allowed', outcome: 'error', mollie_error: { status: 422, title: 'Unprocessable Entity', detail: 'The amount is higher than the amount that remains', field: 'amount' } });
    expect(storyLines(buildStory(world.engine.db, paymentId)!).join('\n')).toContain('  Mollie:    422 Unprocessable Entity: The amount is higher than the amount that remains (field: amount)');
  });
});

describe('approvals in a story', () => {
  it('shows each approval step as an entry of its own, and who approved the call that used it', async () => {
    world = makeWorld({ clerk: CONFIRM_ABOVE });
    const made = content(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-A', amount: '100.00' }));
    const paid = world.simulator.payThroughLink(String(made.payment_link_id), 'paid');
    await world.call('clerk', 'get_payment_status', { invoice_id: 'INV-A' });
    const asked = content(await world.call('clerk', 'refund', { payment_id: paid.id, amount: '60.00' }));
    const approvalId = String(asked.error.approval_id);
    expect(world.engine.approvals.decide(approvalId, 'approved', 'alice').ok).toBe(true);
    const done = content(await world.call('clerk', 'refund', { payment_id: paid.id, amount: '60.00', approval_id: approvalId }));
    expect(done.refund_id).toMatch(/^re_/);

    const story = buildStory(world.engine.db, paid.id)!;
    const kinds = story.entries.map((entry) => [entry.kind, entry.reason]);
    expect(kinds).toEqual([
      ['call', 'allowed'],
      ['call', 'allowed'],
      ['approval', 'approval_asked'],
      ['call', 'approval_required'],
      ['approval', 'approval_approved'],
      ['call', 'approved'],
      ['approval', 'approval_used'],
    ]);
    const [, , askedEvent, waiting, approved, used] = story.entries;
    expect(askedEvent).toMatchObject({ call_id: approvalId, approval_id: approvalId, approvers: [], decision: null });
    expect(waiting).toMatchObject({ decision: 'denied', approval_id: null, approvers: [] });
    expect(approved).toMatchObject({ call_id: approvalId, by: 'alice', approvers: ['alice'] });
    expect(used).toMatchObject({ kind: 'call', decision: 'allowed', approval_id: approvalId, approvers: ['alice'], refund_id: done.refund_id });
    expect(story.approvers).toEqual(['alice']);
    const text = storyLines(story).join('\n');
    expect(text).toContain('Approved by: alice.');
    expect(text).toMatch(/call refund {2}\[[0-9a-f-]{36}\]\n(?: {2}.*\n)* {2}approvers: alice\n/);
  });
});

describe('rows as written by hand', () => {
  let db: SqliteDatabase;
  afterEach(() => db?.close());

  it('reads approvers from `by` alone and from an `approvers` list, and never counts who was only asked', () => {
    db = openDatabase(':memory:');
    const log = new AuditLog(db, () => new Date('2026-12-01T10:00:00Z'));
    const ap = 'ap_abcdefghijklmnopqrstuvwx';
    const base = { kind: 'event' as const, call_id: ap, agent: 'desk', tool: 'refund', payment_id: 'tr_hand1', invoice_id: 'INV-H' };
    log.append({ ...base, reason: 'approval_asked', reason_message: 'asked', arguments: JSON.stringify({ approval_id: ap, approvers: ['carol', 'dave'] }) });
    log.append({ ...base, reason: 'approval_approved', reason_message: 'bob approved', arguments: JSON.stringify({ approval_id: ap, by: 'bob' }) });
    log.append({ ...base, reason: 'approval_approved', reason_message: 'erin approved', arguments: JSON.stringify({ approval_id: ap, by: 'erin', approvers: ['bob', 'erin'] }) });
    log.append({ ...base, reason: 'approval_rejected', reason_message: 'frank rejected', arguments: JSON.stringify({ approval_id: ap, by: 'frank' }) });
    log.append({ ...base, reason: 'approval_approved', reason_message: 'odd', arguments: JSON.stringify({ by: 42, approvers: 'bob' }) });
    log.append({ ...base, reason: 'approval_approved', reason_message: 'broken', arguments: '{not json' });
    // A call that used the approval: only its decision row names the payment; its outcome is found by its call id.
    log.append({ call_id: 'call-1', kind: 'decision', agent: 'desk', tool: 'refund', decision: 'allowed', reason: 'approved', payment_id: 'tr_hand1', arguments: JSON.stringify({ payment_id: 'tr_hand1', approval_id: ap }) });
    log.append({ call_id: 'call-1', kind: 'outcome', agent: 'desk', tool: 'refund', outcome: 'unknown', error_code: 'mollie_unavailable', error_message: 'timed out', mollie_error: 'not json' });
    const story = buildStory(db, 'tr_hand1')!;
    expect(story.entries.map((entry) => entry.approvers)).toEqual([[], ['bob'], ['bob', 'erin'], [], [], [], ['bob', 'erin']]);
    expect(story.entries.map((entry) => entry.by)).toEqual([null, 'bob', 'erin', 'frank', null, null, null]);
    expect(story.approvers).toEqual(['bob', 'erin']);
    expect(story.entries[6]).toMatchObject({ kind: 'call', outcome: 'unknown', mollie_error: { status: null, title: null, detail: 'not json', field: null } });
    // The invoice the rows name is told too, though no table knows it.
    expect(callIds(buildStory(db, 'INV-H'))).toEqual([ap, ap, ap, ap, ap, ap]);
  });

  it('prints text from the log with its control characters escaped', () => {
    db = openDatabase(':memory:');
    const log = new AuditLog(db, () => new Date('2026-12-01T10:00:00Z'));
    const hostile = 'x\u001b[2K\r\n#9  2026-12-01 forged\u202e';
    log.append({ call_id: 'c1', kind: 'decision', agent: `bot${hostile}`, tool: 'refund', decision: 'denied', reason: `r${hostile}`, reason_message: hostile, rule: hostile, policy_sha256: `ab${hostile}`, action: hostile, payment_id: 'tr_x1', amount_value: hostile });
    log.append({ call_id: 'c1', kind: 'outcome', agent: 'bot', outcome: 'error', error_code: hostile, error_message: hostile, mollie_error: JSON.stringify({ status: 500, title: hostile, detail: hostile, field: hostile }) });
    log.append({ call_id: 'c2', kind: 'event', agent: hostile, reason: hostile, reason_message: hostile, payment_id: 'tr_x1' });
    const lines = storyLines(buildStory(db, 'tr_x1')!);
    for (const line of lines) expect(line).not.toMatch(UNPRINTABLE);
    expect(lines.join('\n')).toContain('\\u001b[2K\\u000d\\u000a#9');
  });

  it('reads the log through its indexes: no scan of the audit log or the payment tables', () => {
    db = openDatabase(':memory:');
    const seen: string[] = [];
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      seen.push(sql);
      return prepare(sql);
    }) as typeof db.prepare;
    buildStory(db, 'tr_any1');
    buildStory(db, 'pl_any1');
    buildStory(db, 'INV-1');
    const queries = seen.filter((sql) => !sql.startsWith('PRAGMA'));
    expect(queries.length).toBeGreaterThanOrEqual(6);
    for (const sql of queries) {
      const params = sql.includes('@invoice') ? [{ invoice: 'INV-1', ids: '["tr_a","pl_b"]' }] : ['x'];
      const plan = (prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((step) => step.detail);
      for (const step of plan) expect(step, sql).not.toMatch(/^SCAN (audit_log|payments|payment_links)\b/);
      expect(plan.some((step) => /^SEARCH /.test(step)), sql).toBe(true);
    }
  });
});
