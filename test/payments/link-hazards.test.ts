/**
 * What a hostile review of the payment links found, each as it was reproduced: the engine in this process on the
 * simulator, Mollie's answers held, failed or lost where the review held them. The invariant under all of them: an
 * invoice never has two payable links, an old amount is never payable once replaced, and a link Mollie made is never
 * forgotten.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { errorFromMollieProblem, MollieError } from '../../src/mollie/errors.js';
import { MollieWebhook } from '../../src/webhooks/mollie-webhook.js';
import { deferred, makeWorld, payableLinks, POLICY, type World } from '../support/engine-world.js';

let world: World;
afterEach(() => world?.close());

const DAY = 24 * 3_600_000;
type Reply = Awaited<ReturnType<World['call']>>;
const content = (reply: Reply) => reply.structuredContent as Record<string, any>;
const errorOf = (reply: Reply) => reply.structuredContent.error as { code: string; message: string; reason?: string };
const cannotCancel = () => {
  throw errorFromMollieProblem({ status: 422, title: 'Unprocessable Entity', detail: 'The payment cannot be canceled', field: null });
};

describe('a replacement acting on what it read before its turn', () => {
  it('reads the invoice again once it has the invoice: another call replaced the link meanwhile', async () => {
    world = makeWorld();
    const first = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-1', amount: '100.00' });
    // B reads L1 from Mollie; the answer arrives only after A has replaced L1.
    const gate = deferred();
    const entered = deferred();
    let held = false;
    world.before.getPaymentLink = async () => {
      if (held) return;
      held = true;
      entered.resolve();
      await gate.promise;
    };
    const b = world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-1', amount: '60.00' });
    await entered.promise;
    const a = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-1', amount: '80.00' });
    expect(content(a).replaced).toEqual([content(first).payment_link_id]);
    gate.resolve();
    expect(errorOf(await b)).toMatchObject({ code: 'conflict', message: expect.stringMatching(/changed while this call waited/) });
    expect((await payableLinks(world, 'Invoice INV-1')).map((link) => link.amount?.value)).toEqual(['80.00']);
  });
});

describe('a payment a customer started through a link that then ended', () => {
  it('keeps a withdrawn link pending, not final, while a payment Mollie would not cancel is open; nothing replaces it', async () => {
    world = makeWorld();
    const made = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'ST-1', amount: '75.00' });
    const linkId = String(content(made).payment_link_id);
    const attempt = world.simulator.payThroughLink(linkId, 'open');
    world.before.cancelPayment = cannotCancel;
    expect(errorOf(await world.call('clerk', 'cancel_invoice_payment', { invoice_id: 'ST-1' }))).toMatchObject({ code: 'conflict' });
    expect(errorOf(await world.call('clerk', 'cancel_invoice_payment', { invoice_id: 'ST-1' }))).toMatchObject({ code: 'conflict', message: expect.stringMatching(/under way/) });
    const status = content(await world.call('clerk', 'get_payment_status', { payment_link_id: linkId }));
    expect(status).toMatchObject({ status: 'pending', is_final: false, payment_id: attempt.id });
    expect(errorOf(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'ST-1', amount: '80.00' }))).toMatchObject({ code: 'conflict', message: expect.stringMatching(/under way/) });
    world.simulator.simulate(attempt.id, 'paid');
    expect(content(await world.call('clerk', 'get_payment_status', { payment_link_id: linkId }))).toMatchObject({ status: 'paid', is_final: true });
  });

  it('an expired link with a payment still open reads pending, and its later payment is seen', async () => {
    world = makeWorld();
    const made = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'ST-2', amount: '75.00' });
    const linkId = String(content(made).payment_link_id);
    const transfer = world.simulator.payThroughLink(linkId, 'open');
    world.now.ms += 1000;
    world.simulator.payThroughLink(linkId, 'failed');
    world.simulator.expireLink(linkId);
    expect(content(await world.call('clerk', 'get_payment_status', { invoice_id: 'ST-2' }))).toMatchObject({ status: 'pending', is_final: false });
    world.simulator.simulate(transfer.id, 'paid');
    const after = content(await world.call('clerk', 'get_payment_status', { invoice_id: 'ST-2' }));
    expect(after).toMatchObject({ status: 'paid', payment_id: transfer.id });
    expect(errorOf(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'ST-2', amount: '75.00' }))).toMatchObject({ code: 'conflict', message: expect.stringMatching(/already paid in full/) });
  });
});

describe('whose links an agent may withdraw', () => {
  const BILLING = `agent: billing\ntools:\n  create_invoice_payment:\n    limits:\n      EUR: { per_call: "5000.00" }\n  get_payment_status: {}\n`;
  const HELPDESK = `agent: helpdesk\ntools:\n  cancel_invoice_payment: {}\n`;
  const INTERN = `agent: intern\ntools:\n  create_invoice_payment:\n    limits:\n      EUR: { per_call: "1.00", per_day: "1.00", count_per_day: 1 }\n`;
  const SUPERVISOR = `agent: supervisor\ntools:\n  cancel_invoice_payment: { scope: all }\n`;

  it("only its own, unless its policy says scope: all", async () => {
    world = makeWorld({ billing: BILLING, helpdesk: HELPDESK, intern: INTERN, supervisor: SUPERVISOR });
    const made = await world.call('billing', 'create_invoice_payment', { invoice_id: 'BIG-1', amount: '4200.00' });
    const linkId = String(content(made).payment_link_id);
    expect(errorOf(await world.call('helpdesk', 'cancel_invoice_payment', { payment_link_id: linkId }))).toMatchObject({ code: 'conflict', message: expect.stringMatching(/made by agent "billing"/) });
    expect(errorOf(await world.call('intern', 'create_invoice_payment', { invoice_id: 'BIG-1', amount: '4200.00', amount_already_paid: '4199.99' }))).toMatchObject({ code: 'conflict' });
    expect((await world.simulator.getPaymentLink(linkId)).archived).toBe(false);
    expect(content(await world.call('supervisor', 'cancel_invoice_payment', { payment_link_id: linkId })).canceled).toEqual([expect.objectContaining({ payment_link_id: linkId, status: 'canceled' })]);
  });
});

describe('a creation whose answer arrived but could not be recorded', () => {
  it('stays with the invoice and is recorded by the next call: the link is never forgotten', async () => {
    world = makeWorld();
    const payments = world.engine.payments as unknown as { addLink: (...args: unknown[]) => boolean };
    const original = payments.addLink.bind(payments);
    let failOnce = true;
    payments.addLink = (...args: unknown[]) => {
      if (failOnce) {
        failOnce = false;
        throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      }
      return original(...args);
    };
    expect((await world.call('clerk', 'create_invoice_payment', { invoice_id: 'RF-1', amount: '100.00' })).isError).toBe(true);
    expect(world.engine.db.prepare("SELECT state FROM invoice_locks WHERE invoice_id = 'RF-1'").get()).toEqual({ state: 'left' });
    // The next call first records the link Mollie made; the invoice it was decided on has changed, so it stops...
    expect(errorOf(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'RF-1', amount: '80.00' }))).toMatchObject({ code: 'conflict', message: expect.stringMatching(/changed while this call waited/) });
    expect(world.engine.db.prepare("SELECT amount_value FROM payment_links WHERE invoice_id = 'RF-1'").all()).toEqual([{ amount_value: '100.00' }]);
    // ...and the one after replaces it.
    const second = content(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'RF-1', amount: '80.00' }));
    expect(second.replaced).toHaveLength(1);
    expect((await payableLinks(world, 'Invoice RF-1')).map((link) => link.amount?.value)).toEqual(['80.00']);
  });
});

describe('a holder that is alive but slow', () => {
  it('keeps its turn however old its heartbeat: another process on this host waits, and both end with one payable link', async () => {
    world = makeWorld();
    const other = world.another();
    const first = content(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'TK-1', amount: '100.00' }));
    const gate = deferred();
    const entered = deferred();
    world.before.archivePaymentLink = async () => {
      world.before.archivePaymentLink = undefined;
      entered.resolve();
      await gate.promise;
    };
    const inA = world.call('clerk', 'create_invoice_payment', { invoice_id: 'TK-1', amount: '80.00' });
    await entered.promise;
    world.now.ms += 2 * 60_000; // the machine slept two minutes: A's heartbeat looks stale, its process is alive
    const inB = other.gate.call({ caller: { agent: 'clerk', token: null }, transport: 'in-process', clientName: 'b', confirm: null }, 'create_invoice_payment', { invoice_id: 'TK-1', amount: '60.00' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    gate.resolve();
    const [a, b] = await Promise.all([inA, inB]);
    expect(content(a).replaced).toEqual([first.payment_link_id]);
    expect(errorOf(b)).toMatchObject({ code: 'conflict' });
    expect((await payableLinks(world, 'Invoice TK-1')).map((link) => link.amount?.value)).toEqual(['80.00']);
  });
});

describe('a creation whose answer was lost', () => {
  it('is completed by the settling that runs while serving, not left for the next call', async () => {
    world = makeWorld();
    world.after.createPaymentLink = () => {
      world.after.createPaymentLink = undefined;
      throw new MollieError({ code: 'mollie_unavailable', message: 'socket hang up after the request was sent', retryable: true, effect: 'unknown' });
    };
    const lost = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-2', amount: '100.00' });
    expect(errorOf(lost).code).toBe('mollie_unavailable');
    world.now.ms += 60_000;
    await world.engine.reconcile();
    const recorded = world.engine.db.prepare("SELECT link_id, call_id FROM payment_links WHERE invoice_id = 'INV-2'").all() as { link_id: string; call_id: string }[];
    expect(recorded).toEqual([{ link_id: (await payableLinks(world, 'Invoice INV-2'))[0]!.id, call_id: String(lost.structuredContent.audit_id) }]);
    expect(world.engine.db.prepare('SELECT state FROM reservations WHERE call_id = ?').get(String(lost.structuredContent.audit_id))).toEqual({ state: 'spent' });
    const settled = world.engine.db.prepare("SELECT reason, outcome FROM audit_log WHERE call_id = ? AND kind = 'event'").get(String(lost.structuredContent.audit_id));
    expect(settled).toEqual({ reason: 'settled', outcome: 'ok' });
  });

  it('after 23 hours it is searched for among every link made since, not one page: never a second payable link', async () => {
    world = makeWorld();
    world.after.createPaymentLink = () => {
      world.after.createPaymentLink = undefined;
      throw new MollieError({ code: 'mollie_unavailable', message: 'socket hang up after the request was sent', retryable: true, effect: 'unknown' });
    };
    await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-3', amount: '100.00' });
    world.now.ms += DAY;
    for (let i = 0; i < 260; i += 1) expect((await world.call('clerk', 'create_invoice_payment', { invoice_id: `OTHER-${i}`, amount: '10.00' })).isError).toBe(false);
    expect(errorOf(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-3', amount: '80.00' })).code).toBe('conflict');
    const corrected = content(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'INV-3', amount: '80.00' }));
    expect(corrected.replaced).toHaveLength(1);
    expect((await payableLinks(world, 'Invoice INV-3')).map((link) => link.amount?.value)).toEqual(['80.00']);
  }, 60_000);
});

describe('an invoice whose lock could not be freed', () => {
  it('gets its success back, and the next call takes the leftover lock over at once', async () => {
    world = makeWorld();
    const locks = world.engine.gate.locks as unknown as { remove: { run: (...args: unknown[]) => unknown } };
    const remove = locks.remove.run.bind(locks.remove);
    let failOnce = true;
    locks.remove.run = (...args: unknown[]) => {
      if (failOnce) {
        failOnce = false;
        throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      }
      return remove(...args);
    };
    const made = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'LK-1', amount: '10.00' });
    expect(made.isError).toBe(false);
    const started = Date.now();
    const again = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'LK-1', amount: '10.00' });
    expect(content(again)).toMatchObject({ reused: true, payment_link_id: content(made).payment_link_id });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('webhooks for link payments', () => {
  it('match among links made before the payment, and say when the search was cut short', async () => {
    world = makeWorld();
    const ids: string[] = [];
    const start = world.now.ms;
    for (let i = 0; i < 25; i += 1) {
      world.now.ms = start + i * 10 * 60_000;
      ids.push(String(content(await world.call('clerk', 'create_invoice_payment', { invoice_id: `SUB-${i}`, amount: '49.00' })).payment_link_id));
    }
    const end = world.now.ms;
    const webhook = new MollieWebhook({ mollie: world.port, payments: world.engine.payments, audit: world.engine.audit, logger: pino({ level: 'silent' }), clock: () => new Date(world.now.ms) });
    // A payment through an early link, made before the later links existed: they are not candidates.
    world.now.ms = start + 2 * 10 * 60_000 + 1000;
    const early = world.simulator.payThroughLink(ids[2]!, 'paid');
    world.now.ms = end;
    const answer = await webhook.receive(early.id, 'mollie');
    const row = world.engine.db.prepare("SELECT outcome, payment_id FROM audit_log WHERE call_id = ? AND kind = 'outcome'").get(answer.auditId);
    expect(row).toEqual({ outcome: 'ok', payment_id: ids[2] });
    // Through the oldest link, now: more candidates than one lookup reads, and the outcome says so.
    const old = world.simulator.payThroughLink(ids[0]!, 'paid');
    const cut = await webhook.receive(old.id, 'mollie');
    const message = (world.engine.db.prepare("SELECT error_message FROM audit_log WHERE call_id = ? AND kind = 'outcome'").get(cut.auditId) as { error_message: string }).error_message;
    expect(message).toMatch(/among the 20 newest of its links taking 49\.00 EUR; an older one is matched when its invoice is read/);
    expect(content(await world.call('clerk', 'get_payment_status', { invoice_id: 'SUB-0' }))).toMatchObject({ status: 'paid', payment_id: old.id });
  });

  it('does not ask Mollie about an id when this server made no payment and has no link taking payments', async () => {
    world = makeWorld();
    const webhook = new MollieWebhook({ mollie: world.port, payments: world.engine.payments, audit: world.engine.audit, logger: pino({ level: 'silent' }) });
    const before = world.calls.length;
    await webhook.receive('tr_someoneElses1', 'mollie');
    expect(world.calls.length).toBe(before);
  });
});

describe('reconciling a call that died before it sent anything', () => {
  it('is not credited with what an identical retry made', async () => {
    world = makeWorld();
    const other = world.another();
    await world.call('clerk', 'create_invoice_payment', { invoice_id: 'RC-1', amount: '100.00' });
    world.before.archivePaymentLink = () => new Promise(() => undefined); // A hangs while archiving, then "dies"
    const inA = world.call('clerk', 'create_invoice_payment', { invoice_id: 'RC-1', amount: '70.00', kind: 'checkout' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    world.before.archivePaymentLink = undefined;
    const aCall = (world.engine.db.prepare("SELECT call_id FROM audit_log WHERE kind = 'decision' ORDER BY seq DESC LIMIT 1").get() as { call_id: string }).call_id;
    world.engine.gate.locks['active' as never] && (world.engine.gate.locks as unknown as { active: Set<string> }).active.clear();
    world.engine.db.prepare('DELETE FROM server_instances WHERE instance_id = ?').run(world.engine.gate.instanceId);
    void inA;
    const retry = content(await other.gate.call({ caller: { agent: 'clerk', token: null }, transport: 'in-process', clientName: 'b', confirm: null }, 'create_invoice_payment', { invoice_id: 'RC-1', amount: '70.00', kind: 'checkout' }));
    expect(retry.payment_id).toMatch(/^tr_/);
    world.now.ms += 60_000;
    const summary = await other.reconcile();
    expect(summary).toMatchObject({ interrupted: 1, happened: 0, didNotHappen: 1 });
    const outcome = other.db.prepare("SELECT error_message FROM audit_log WHERE call_id = ? AND kind = 'outcome'").get(aCall) as { error_message: string };
    expect(outcome.error_message).toMatch(/no creation was sent to Mollie for invoice RC-1: it did not happen/);
  });
});

describe('a payment through a link not read yet', () => {
  it('is reported as the link\'s, with its invoice', async () => {
    world = makeWorld();
    const made = content(await world.call('clerk', 'create_invoice_payment', { invoice_id: 'KL-1', amount: '20.00' }));
    const payment = world.simulator.payThroughLink(String(made.payment_link_id), 'open');
    expect(content(await world.call('clerk', 'get_payment_status', { payment_id: payment.id }))).toMatchObject({ kind: 'payment_link', payment_link_id: made.payment_link_id, invoice_id: 'KL-1' });
  });
});

describe('the policy key scope on the link tools', () => {
  it('is refused on a tool it does not apply to, and accepted on create and cancel', () => {
    expect(() => makeWorld({ bad: POLICY('bad', '', '  ').replace('get_payment_status: {}', 'get_payment_status: { scope: all }') })).toThrow(/neither reads the audit log nor withdraws pay links/);
    world = makeWorld({ good: POLICY('good').replace('cancel_invoice_payment: {}', 'cancel_invoice_payment: { scope: all }') });
  });
});

describe('an invoice paid in one currency', () => {
  it('gets no pay link in another currency: the whole invoice would be asked again (finding 13)', async () => {
    const usd = `      USD: { per_call: "1000.00", per_day: "1000000.00" }\n`;
    world = makeWorld({ clerk: POLICY('clerk').replace('      EUR: { per_call: "1000.00", per_day: "1000000.00" }\n', `      EUR: { per_call: "1000.00", per_day: "1000000.00" }\n${usd}`) });
    const made = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'FX-1', amount: '100.00' });
    world.simulator.payThroughLink(String(content(made).payment_link_id), 'paid');
    const usdLink = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'FX-1', amount: '110.00', currency: 'USD' });
    expect(errorOf(usdLink)).toMatchObject({ code: 'conflict', message: expect.stringMatching(/paid in EUR.*no pay link in USD/) });
    expect((await world.simulator.listRecentPaymentLinks(250)).filter((link) => link.description === 'Invoice FX-1')).toHaveLength(1);
  });
});

describe('a refund in flight in a process that is paused, not dead (finding 2)', () => {
  it('is left alone by another process however stale the heartbeat: its reservation holds, the same refund is refused, one outcome', async () => {
    world = makeWorld();
    const made = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'PZ-1', amount: '100.00' });
    const payment = world.simulator.payThroughLink(String(made.structuredContent.payment_link_id), 'paid');
    const gate = deferred();
    const entered = deferred();
    world.before.createRefund = async () => {
      world.before.createRefund = undefined;
      entered.resolve();
      await gate.promise;
    };
    const inA = world.call('clerk', 'refund', { payment_id: payment.id, amount: '60.00' });
    await entered.promise;
    // The process slept five minutes (its heartbeat is stale, its pid alive); another one on this host settles.
    world.now.ms += 5 * 60_000;
    const other = world.another();
    const summary = await other.reconcile();
    expect(summary.interrupted).toBe(0);
    const again = await other.gate.call({ caller: { agent: 'clerk', token: null }, transport: 'in-process', clientName: 'b', confirm: null }, 'refund', { payment_id: payment.id, amount: '60.00' });
    expect(errorOf(again)).toMatchObject({ code: 'conflict', reason: 'duplicate_call' });
    gate.resolve();
    const a = await inA;
    expect(a.isError).toBeFalsy();
    const callId = String(a.structuredContent.audit_id);
    expect(world.engine.db.prepare("SELECT count(*) AS n FROM audit_log WHERE call_id = ? AND kind = 'outcome'").get(callId)).toEqual({ n: 1 });
    expect(world.engine.db.prepare('SELECT state FROM reservations WHERE call_id = ?').get(callId)).toEqual({ state: 'spent' });
    expect((await world.simulator.listRefunds(payment.id)).length).toBe(1);
  });
});
