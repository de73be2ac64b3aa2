/**
 * The public contract over stdio, end to end: the built server spawned as a client would, the MCP SDK client (which
 * validates every structuredContent against the declared outputSchema), a real SQLite file, and Mollie played by the
 * https double so the test can make the customer pay. Every denial must also be absent from what Mollie received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/policy/decide.js';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest } from '../support/store-under-test.js';

const TOKEN = 'locked-agent-token-0123456789';

const POLICIES = {
  clerk: `agent: clerk
rate_limit: { per_minute: 1000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "500.00", per_day: "2000.00", count_per_day: 100 }
      JPY: { per_call: "50000" }
    redirect_hosts: [pay.example.com]
  get_payment_status: {}
  refund:
    limits:
      EUR: { per_call: "100.00", per_day: "150.00", count_per_day: 10 }
  list_logs: { scope: own }
`,
  bigticket: `agent: bigticket
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "600.00", per_day: "1000.00" }
`,
  counter: `agent: counter
tools:
  refund:
    limits:
      EUR: { per_call: "100.00", count_per_day: 1 }
`,
  reader: `agent: reader
tools:
  get_payment_status: {}
  list_logs: { scope: all }
`,
  throttled: `agent: throttled
rate_limit: { per_minute: 2 }
tools:
  get_payment_status: {}
`,
  'live-only': `agent: live-only
modes: [live]
tools:
  get_payment_status: {}
`,
  locked: `agent: locked
token_sha256: ${sha256Hex(TOKEN)}
tools:
  get_payment_status: {}
`,
};

let double: MollieApiDouble;
let workspace: Workspace;
const servers: ServerHandle[] = [];

async function as(agent: string | undefined, extra: { token?: string } = {}): Promise<ServerHandle> {
  const server = await spawnServer({ agent, workspace, env: mollieDoubleEnv(double.url), ...extra });
  servers.push(server);
  return server;
}

function errorOf(result: { structuredContent: Record<string, unknown> }): { code: string; reason?: string; message: string; field?: string | null; retryable: boolean } {
  return result.structuredContent.error as never;
}

/** Calls `work` and returns how many requests Mollie received meanwhile. */
async function requestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: number }> {
  const before = double.requests.length;
  const result = await work();
  return { result, requests: double.requests.length - before };
}

function auditRows(callId: string): Record<string, unknown>[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare('SELECT * FROM audit_log WHERE call_id = ? ORDER BY seq').all(callId) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

let clerk: ServerHandle;

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace(POLICIES);
  clerk = await as('clerk');
});

afterAll(async () => {
  for (const server of servers) await server.close();
  await double.close();
  workspace.remove();
});

describe('tools/list shows each agent only what its policy allows', () => {
  it('lists every tool for clerk, two for reader, none for an unknown agent or no agent', async () => {
    expect((await clerk.client.listTools()).tools.map((tool) => tool.name)).toEqual(['create_invoice_payment', 'get_payment_status', 'refund', 'list_logs']);
    expect((await (await as('reader')).client.listTools()).tools.map((tool) => tool.name)).toEqual(['get_payment_status', 'list_logs']);
    expect((await (await as('nobody')).client.listTools()).tools).toEqual([]);
    expect((await (await as(undefined)).client.listTools()).tools).toEqual([]);
  });

  it('hides the tools of an agent whose token is wrong, and of an agent not allowed in this mode', async () => {
    expect((await (await as('locked', { token: 'wrong-token' })).client.listTools()).tools).toEqual([]);
    expect((await (await as('locked', { token: TOKEN })).client.listTools()).tools.map((tool) => tool.name)).toEqual(['get_payment_status']);
    expect((await (await as('live-only')).client.listTools()).tools).toEqual([]);
  });
});

describe('create_invoice_payment', () => {
  it('creates one checkout with the invoice in metadata and the default description, and reuses it when asked again', async () => {
    const first = await requestsDuring(() => clerk.call('create_invoice_payment', { invoice_id: 'INV-100', amount: '120.5', kind: 'checkout' }));
    expect(first.result.isError).toBeFalsy();
    const created = first.result.structuredContent;
    expect(created).toMatchObject({ invoice_id: 'INV-100', kind: 'checkout', payment_link_id: null, status: 'open', amount: { value: '120.50', currency: 'EUR' }, mode: 'test', reused: false, replaced: [] });
    expect(created.payment_id).toMatch(/^tr_/);
    expect(created.checkout_url).toMatch(/^https:\/\//);
    expect(created.audit_id).toMatch(/^[0-9a-f-]{36}$/);
    const post = double.requests.filter((request) => request.method === 'POST' && request.path === '/v2/payments').at(-1)!;
    expect(post.body).toMatchObject({ amount: { value: '120.50', currency: 'EUR' }, description: 'Invoice INV-100', metadata: { invoice_id: 'INV-100' }, redirectUrl: 'https://shop.example.com/thanks' });
    expect(post.headers['idempotency-key']).toMatch(/^mim-pay-[0-9a-f]{48}$/);

    const again = await clerk.call('create_invoice_payment', { invoice_id: 'INV-100', amount: '120.50', kind: 'checkout' });
    expect(again.structuredContent).toMatchObject({ payment_id: created.payment_id, reused: true });
    expect(double.requests.filter((request) => request.method === 'POST' && request.path === '/v2/payments' && (request.body as { metadata?: { invoice_id?: string } })?.metadata?.invoice_id === 'INV-100')).toHaveLength(1);
    expect(auditRows(String(again.structuredContent.audit_id)).map((row) => [row.kind, row.decision ?? row.outcome])).toEqual([['decision', 'allowed'], ['outcome', 'ok']]);
  });

  it('two identical requests racing each other make one payment link', async () => {
    const [a, b] = await Promise.all([
      clerk.call('create_invoice_payment', { invoice_id: 'INV-RACE', amount: '75.00' }),
      clerk.call('create_invoice_payment', { invoice_id: 'INV-RACE', amount: '75.00' }),
    ]);
    expect(a.isError, JSON.stringify([a.structuredContent, b.structuredContent])).toBeFalsy();
    expect(a.structuredContent.payment_link_id).toMatch(/^pl_/);
    expect(a.structuredContent.payment_link_id).toBe(b.structuredContent.payment_link_id);
    expect([a.structuredContent.reused, b.structuredContent.reused].sort()).toEqual([false, true]);
  });

  it('makes a new checkout after the last one expired, with a new Idempotency-Key', async () => {
    const first = await clerk.call('create_invoice_payment', { invoice_id: 'INV-EXP', amount: '40.00', kind: 'checkout' });
    double.simulator.simulate(String(first.structuredContent.payment_id), 'expired');
    const second = await clerk.call('create_invoice_payment', { invoice_id: 'INV-EXP', amount: '40.00', kind: 'checkout' });
    expect(second.isError).toBeFalsy();
    expect(second.structuredContent.payment_id).not.toBe(first.structuredContent.payment_id);
    expect(second.structuredContent.reused).toBe(false);
  });

  it('asks only for the remainder when part was paid, and refuses a new link that ignores a payment this server saw', async () => {
    const partial = await clerk.call('create_invoice_payment', { invoice_id: 'INV-PART', amount: '300.00', amount_already_paid: '100.00', kind: 'checkout' });
    expect(partial.structuredContent.amount).toEqual({ value: '200.00', currency: 'EUR' });
    double.simulator.simulate(String(partial.structuredContent.payment_id), 'paid');
    const ignoring = await requestsDuring(() => clerk.call('create_invoice_payment', { invoice_id: 'INV-PART', amount: '300.00', amount_already_paid: '100.00', kind: 'checkout' }));
    expect(ignoring.result.isError).toBe(true);
    expect(errorOf(ignoring.result)).toMatchObject({ code: 'conflict', field: 'amount_already_paid' });
    expect(errorOf(ignoring.result).message).toMatch(/already has 200\.00 EUR paid/);
    expect(ignoring.requests).toBe(1); // only the status refresh, no new payment
  });

  it('hands back an open link without counting it again towards the daily total', async () => {
    const bigticket = await as('bigticket');
    const first = await bigticket.call('create_invoice_payment', { invoice_id: 'INV-BIG', amount: '600.00' });
    const again = await bigticket.call('create_invoice_payment', { invoice_id: 'INV-BIG', amount: '600.00' });
    expect(again.isError).toBeFalsy();
    expect(again.structuredContent).toMatchObject({ payment_link_id: first.structuredContent.payment_link_id, reused: true });
    const next = await bigticket.call('create_invoice_payment', { invoice_id: 'INV-BIG-2', amount: '400.00' });
    expect(next.isError).toBeFalsy();
    const over = await bigticket.call('create_invoice_payment', { invoice_id: 'INV-BIG-3', amount: '0.01' });
    expect(errorOf(over)).toMatchObject({ code: 'policy_denied', reason: 'per_day_exceeded' });
  });

  it('takes JPY without decimals and a redirect URL on an allowed host', async () => {
    const yen = await clerk.call('create_invoice_payment', { invoice_id: 'INV-JP', amount: '1500', currency: 'JPY', redirect_url: 'https://pay.example.com/done' });
    expect(yen.isError).toBeFalsy();
    expect(yen.structuredContent.amount).toEqual({ value: '1500', currency: 'JPY' });
  });
});

describe('get_payment_status', () => {
  it('reads a payment by id and an invoice with all its payments, with a readable label', async () => {
    const created = await clerk.call('create_invoice_payment', { invoice_id: 'INV-200', amount: '80.00', kind: 'checkout' });
    const paymentId = String(created.structuredContent.payment_id);
    const open = await clerk.call('get_payment_status', { payment_id: paymentId });
    expect(open.structuredContent).toMatchObject({ kind: 'checkout', payment_link_id: null, status: 'open', is_final: false, invoice_id: 'INV-200', amount_refunded: null, amount_remaining: null, refunds: [] });
    expect(open.structuredContent.status_label).toMatch(/^Open: waiting for the customer to pay; the checkout expires on /);
    expect(open.structuredContent.checkout_url).toMatch(/^https:/);

    double.simulator.simulate(paymentId, 'paid');
    const paid = await clerk.call('get_payment_status', { invoice_id: 'INV-200' });
    expect(paid.structuredContent).toMatchObject({ payment_id: paymentId, status: 'paid', is_final: true, checkout_url: null, amount_remaining: { value: '80.00', currency: 'EUR' } });
    expect(paid.structuredContent.status_label).toMatch(/^Paid on \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC$/);
    expect(paid.structuredContent.payments).toEqual([expect.objectContaining({ kind: 'checkout', payment_link_id: null, payment_id: paymentId, status: 'paid' })]);
  });

  it('says not_found for an invoice it never saw and for a payment Mollie does not have', async () => {
    const unknownInvoice = await clerk.call('get_payment_status', { invoice_id: 'NEVER-SEEN' });
    expect(errorOf(unknownInvoice)).toMatchObject({ code: 'not_found', field: 'invoice_id' });
    const unknownPayment = await clerk.call('get_payment_status', { payment_id: 'tr_doesNotExist1' });
    expect(errorOf(unknownPayment)).toMatchObject({ code: 'not_found', status: 404 });
  });
});

describe('refund', () => {
  let paymentId: string;
  beforeAll(async () => {
    const created = await clerk.call('create_invoice_payment', { invoice_id: 'INV-300', amount: '250.00', kind: 'checkout' });
    paymentId = String(created.structuredContent.payment_id);
    double.simulator.simulate(paymentId, 'paid');
  });

  it('refunds part of a paid payment with the Idempotency-Key its decision row recorded', async () => {
    const refunded = await clerk.call('refund', { payment_id: paymentId, amount: '20.00', description: 'Goodwill' });
    expect(refunded.isError).toBeFalsy();
    expect(refunded.structuredContent).toMatchObject({ payment_id: paymentId, status: 'pending', amount: { value: '20.00', currency: 'EUR' } });
    expect(refunded.structuredContent.refund_id).toMatch(/^re_/);
    const [decision, outcome] = auditRows(String(refunded.structuredContent.audit_id));
    const post = double.requests.filter((request) => request.method === 'POST' && request.path.endsWith('/refunds')).at(-1)!;
    expect(decision).toMatchObject({ kind: 'decision', decision: 'allowed', amount_value: '20.00', amount_currency: 'EUR', payment_id: paymentId, invoice_id: 'INV-300' });
    expect(post.headers['idempotency-key']).toBe(decision!.idempotency_key);
    expect(outcome).toMatchObject({ kind: 'outcome', outcome: 'ok', refund_id: refunded.structuredContent.refund_id });
  });

  it('refuses more than what remains, and an unpaid payment, without asking Mollie to refund; never as an allowed call', async () => {
    const small = await clerk.call('create_invoice_payment', { invoice_id: 'INV-299', amount: '50.00', kind: 'checkout' });
    double.simulator.simulate(String(small.structuredContent.payment_id), 'paid');
    const over = await requestsDuring(() => clerk.call('refund', { payment_id: String(small.structuredContent.payment_id), amount: '60.00' }));
    expect(errorOf(over.result)).toMatchObject({ code: 'conflict', field: 'amount' });
    expect(errorOf(over.result).message).toMatch(/more than the 50\.00 EUR that can still be refunded/);
    // The log never says the policy allowed it: the call could not be done.
    expect(auditRows(String(over.result.structuredContent.audit_id)).map((row) => [row.kind, row.decision ?? row.outcome, row.reason ?? row.error_code])).toEqual([
      ['decision', 'denied', 'precondition_failed'],
      ['outcome', 'error', 'conflict'],
    ]);
    const open = await clerk.call('create_invoice_payment', { invoice_id: 'INV-301', amount: '10.00', kind: 'checkout' });
    const unpaid = await requestsDuring(() => clerk.call('refund', { payment_id: String(open.structuredContent.payment_id) }));
    expect(errorOf(unpaid.result)).toMatchObject({ code: 'conflict' });
    expect(errorOf(unpaid.result).message).toMatch(/is open, not paid/);
    expect(auditRows(String(unpaid.result.structuredContent.audit_id))[0]).toMatchObject({ decision: 'denied', reason: 'precondition_failed' });
    for (const attempt of [over, unpaid]) expect(attempt.requests).toBe(1); // the GET, never a POST
  });

  it('a refund over the per-call cap is reported as over the cap first, whatever else is wrong with it', async () => {
    // 240.00: more than the 230.00 that remains, and over clerk's per_call of 100.00.
    const over = await requestsDuring(() => clerk.call('refund', { payment_id: paymentId, amount: '240.00' }));
    expect(errorOf(over.result)).toMatchObject({ code: 'policy_denied', reason: 'per_call_exceeded' });
    const [decision] = auditRows(String(over.result.structuredContent.audit_id));
    expect(decision).toMatchObject({ decision: 'denied', reason: 'per_call_exceeded', amount_value: '240.00', amount_currency: 'EUR' });
    expect(over.requests).toBe(1);
  });

  it('refunds the full remainder by default', async () => {
    const created = await clerk.call('create_invoice_payment', { invoice_id: 'INV-302', amount: '45.00', kind: 'checkout' });
    const id = String(created.structuredContent.payment_id);
    double.simulator.simulate(id, 'paid');
    const refunded = await clerk.call('refund', { payment_id: id });
    expect(refunded.structuredContent.amount).toEqual({ value: '45.00', currency: 'EUR' });
  });
});

describe('every denial reason, each with its audit rows and nothing sent to Mollie', () => {
  async function expectDenied(server: ServerHandle, tool: string, args: Record<string, unknown>, reason: string, mollieRequests = 0): Promise<void> {
    const { result, requests } = await requestsDuring(() => server.call(tool, args));
    expect(result.isError).toBe(true);
    expect(errorOf(result)).toMatchObject({ code: 'policy_denied', reason });
    expect(errorOf(result).message.length).toBeGreaterThan(20);
    expect(requests).toBe(mollieRequests);
    const rows = auditRows(String(result.structuredContent.audit_id));
    expect(rows.map((row) => [row.kind, row.decision ?? row.outcome, row.reason ?? row.error_code])).toEqual([
      ['decision', 'denied', reason],
      ['outcome', 'error', 'policy_denied'],
    ]);
  }

  it('no agent, unknown agent, wrong token, tool not listed, mode not allowed', async () => {
    await expectDenied(await as(undefined), 'get_payment_status', { payment_id: 'tr_abc12345' }, 'no_agent');
    await expectDenied(await as('mallory'), 'create_invoice_payment', { invoice_id: 'X-1', amount: '10.00' }, 'unknown_agent');
    await expectDenied(await as('locked', { token: 'not-the-token' }), 'get_payment_status', { payment_id: 'tr_abc12345' }, 'token_mismatch');
    await expectDenied(await as('locked'), 'get_payment_status', { payment_id: 'tr_abc12345' }, 'token_mismatch');
    await expectDenied(await as('reader'), 'refund', { payment_id: 'tr_abc12345' }, 'tool_not_allowed');
    await expectDenied(await as('live-only'), 'get_payment_status', { payment_id: 'tr_abc12345' }, 'mode_not_allowed');
  });

  it('currency not in limits, over per_call, foreign redirect host', async () => {
    await expectDenied(clerk, 'create_invoice_payment', { invoice_id: 'D-1', amount: '10.00', currency: 'USD' }, 'currency_not_allowed');
    await expectDenied(clerk, 'create_invoice_payment', { invoice_id: 'D-2', amount: '500.01' }, 'per_call_exceeded');
    await expectDenied(clerk, 'create_invoice_payment', { invoice_id: 'D-3', amount: '10.00', redirect_url: 'https://evil.example.net/phish' }, 'redirect_host_not_allowed');
  });

  it('the rolling 24-hour total and count, and the per-minute rate', async () => {
    const created = await clerk.call('create_invoice_payment', { invoice_id: 'INV-CAP', amount: '500.00', kind: 'checkout' });
    const id = String(created.structuredContent.payment_id);
    double.simulator.simulate(id, 'paid');
    // clerk's refund caps: 150.00 EUR a day; earlier tests in this file refunded 20.00 and 45.00.
    expect((await clerk.call('refund', { payment_id: id, amount: '80.00' })).isError).toBeFalsy();
    // The refund's own reads reach Mollie (the payment, and its refunds for the duplicate guard); the refund does not.
    await expectDenied(clerk, 'refund', { payment_id: id, amount: '10.00' }, 'per_day_exceeded', 2);

    const counter = await as('counter');
    expect((await counter.call('refund', { payment_id: id, amount: '1.00' })).isError).toBeFalsy();
    await expectDenied(counter, 'refund', { payment_id: id, amount: '2.00' }, 'count_per_day_exceeded', 2);

    const throttled = await as('throttled');
    for (let i = 0; i < 2; i += 1) expect((await throttled.call('get_payment_status', { payment_id: id })).isError).toBeFalsy();
    const limited = await throttled.call('get_payment_status', { payment_id: id });
    expect(errorOf(limited)).toMatchObject({ code: 'policy_denied', reason: 'rate_limit_exceeded', retryable: true });
  });

  it('an agent with scope own reading another agent\'s entries', async () => {
    await expectDenied(clerk, 'list_logs', { agent: 'reader' }, 'scope_own');
  });
});

describe('bad input: a clear error naming the field, nothing sent to Mollie, and still an audit row', () => {
  const cases: Array<[string, string, Record<string, unknown>, string, RegExp]> = [
    ['three decimals', 'create_invoice_payment', { invoice_id: 'B-1', amount: '10.001' }, 'amount', /3 decimals, but EUR has 2/],
    ['a negative amount', 'create_invoice_payment', { invoice_id: 'B-2', amount: '-10.00' }, 'amount', /has a sign/],
    ['a float number', 'create_invoice_payment', { invoice_id: 'B-3', amount: 10.5 }, 'amount', /decimal string such as "120.00", not a number/],
    ['injection in invoice_id', 'create_invoice_payment', { invoice_id: "1'; DROP TABLE audit_log;--", amount: '10.00' }, 'invoice_id', /only letters, digits/],
    ['an unknown currency', 'create_invoice_payment', { invoice_id: 'B-5', amount: '10.00', currency: 'XYZ' }, 'currency', /currency must be one Mollie accepts/],
    ['decimals in JPY', 'create_invoice_payment', { invoice_id: 'B-6', amount: '100.50', currency: 'JPY' }, 'amount', /JPY has none/],
    ['a description over 255', 'create_invoice_payment', { invoice_id: 'B-7', amount: '10.00', description: 'x'.repeat(256) }, 'description', /at most 255/],
    ['an http redirect', 'create_invoice_payment', { invoice_id: 'B-8', amount: '10.00', redirect_url: 'http://pay.example.com/' }, 'redirect_url', /https URL/],
    ['an unknown argument', 'create_invoice_payment', { invoice_id: 'B-9', amount: '10.00', amount_paid: '5.00' }, 'amount_paid', /unknown argument "amount_paid"/],
    ['a missing argument', 'create_invoice_payment', { amount: '10.00' }, 'invoice_id', /invoice_id is required/],
    ['both payment and invoice', 'get_payment_status', { payment_id: 'tr_abc12345', invoice_id: 'B-10' }, 'invoice_id', /exactly one of payment_id, payment_link_id or invoice_id/],
    ['a malformed payment id', 'refund', { payment_id: 'tr_../../v2/refunds' }, 'payment_id', /"tr_" followed by letters and digits/],
    ['a refund with three decimals', 'refund', { payment_id: 'tr_abc12345', amount: '10.001' }, 'amount', /3 decimals, but no currency Mollie accepts has more than 2/],
    ['a zero refund', 'refund', { payment_id: 'tr_abc12345', amount: '0.00' }, 'amount', /is zero/],
    ['a limit over 200', 'list_logs', { limit: 500 }, 'limit', /at most 200/],
    ['a forged cursor', 'list_logs', { cursor: 'not-a-cursor' }, 'cursor', /cursor is not one this server handed out/],
  ];

  it.each(cases)('%s', async (_name, tool, args, field, message) => {
    const { result, requests } = await requestsDuring(() => clerk.call(tool, args));
    expect(result.isError).toBe(true);
    expect(errorOf(result)).toMatchObject({ code: 'invalid_input', field, retryable: false });
    expect(errorOf(result).message).toMatch(message);
    expect(requests).toBe(0);
    const rows = auditRows(String(result.structuredContent.audit_id));
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatchObject({ outcome: 'error', error_code: 'invalid_input' });
  });

  it('an unknown tool is refused and recorded', async () => {
    const result = await clerk.call('transfer_funds', { to: 'NL00BANK0123456789' });
    expect(errorOf(result)).toMatchObject({ code: 'invalid_input' });
    // The made-up name is quoted in the text, never stored as a tool.
    expect(auditRows(String(result.structuredContent.audit_id))[0]).toMatchObject({ tool: null, decision: 'denied', reason: 'unknown_tool', reason_message: 'There is no tool "transfer_funds".' });
  });
});

describe('list_logs', () => {
  it('pages with a cursor, filters, keeps an own-scope agent to its own calls, and summarises each call', async () => {
    const own = await clerk.call('list_logs', { limit: 200 });
    const entries = own.structuredContent.entries as Array<Record<string, unknown>>;
    expect(entries.length).toBeGreaterThan(20);
    expect(new Set(entries.map((entry) => entry.agent))).toEqual(new Set(['clerk']));

    const reader = await as('reader');
    const firstPage = await reader.call('list_logs', { limit: 5 });
    const secondPage = await reader.call('list_logs', { limit: 5, cursor: firstPage.structuredContent.next_cursor });
    const ids = [...(firstPage.structuredContent.entries as Array<{ audit_id: string }>), ...(secondPage.structuredContent.entries as Array<{ audit_id: string }>)].map((entry) => entry.audit_id);
    expect(new Set(ids).size).toBe(10);

    const denied = await reader.call('list_logs', { decision: 'denied', agent: 'mallory' });
    const [entry] = denied.structuredContent.entries as Array<Record<string, unknown>>;
    expect(entry).toMatchObject({ agent: 'mallory', tool: 'create_invoice_payment', decision: 'denied', reason: 'unknown_agent', outcome: 'error' });
    expect(entry!.summary).toMatch(/^mallory asked to create a pay link for invoice X-1 of 10.00 EUR: denied\. Agent "mallory" has no policy/);

    const forInvoice = await reader.call('list_logs', { invoice_id: 'INV-300', tool: 'refund', outcome: 'ok' });
    const refunds = forInvoice.structuredContent.entries as Array<Record<string, unknown>>;
    expect(refunds.length).toBe(1);
    expect(refunds[0]!.summary).toMatch(/^clerk asked to refund 20.00 of payment tr_\w+: allowed; refund re_\w+ of 20.00 EUR is pending\.$/);
    expect(refunds.every((item) => typeof item.refund_id === 'string' && String(item.refund_id).startsWith('re_'))).toBe(true);

    const future = await reader.call('list_logs', { since: '2999-01-01T00:00:00Z' });
    expect(future.structuredContent).toEqual({ entries: [], next_cursor: null, audit_id: expect.any(String) });
  });

  it('records the reading itself', async () => {
    const reader = await as('reader');
    const read = await reader.call('list_logs', { limit: 1 });
    expect(auditRows(String(read.structuredContent.audit_id)).map((row) => row.tool)).toEqual(['list_logs', 'list_logs']);
  });
});

describe('secrets and stdout', () => {
  it('keeps the API key and tokens out of the audit log and the server log; logs go to stderr', () => {
    const db = openStoreForTest(workspace);
    const dump = JSON.stringify(db.prepare('SELECT * FROM audit_log').all());
    db.close();
    for (const secret of ['test_e2eSuiteKeyMustNeverLeak012345', TOKEN, 'not-the-token']) {
      expect(dump).not.toContain(secret);
      for (const server of servers) expect(server.stderr()).not.toContain(secret);
    }
    expect(clerk.stderr()).toMatch(/"msg":"Call completed"/);
  });
});
