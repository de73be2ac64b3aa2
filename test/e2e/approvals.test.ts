/**
 * A person approves money-moving calls, end to end: the built server over stdio (and once over HTTP), SDK clients
 * with and without the elicitation capability, the approve/reject/approvals commands, Mollie played by the https
 * double. For every path: what Mollie received (nothing before a person said yes) and what the audit log says.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ElicitRequest, ElicitResult } from '@modelcontextprotocol/server';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { newToken, spawnHttpServer } from '../support/http-server.js';
import { CLI, createWorkspace, mollieDoubleEnv, spawnServer, type ElicitHandler, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest, storeEnv, ON_POSTGRES } from '../support/store-under-test.js';

const exec = promisify(execFile);
const HTTP_DESK = newToken();
const HTTP_TRUSTED = newToken();

const POLICIES = {
  desk: `agent: desk
token_sha256: ${HTTP_DESK.sha256}
rate_limit: { per_minute: 1000 }
tools:
  refund:
    limits:
      EUR: { per_call: "1000.00", per_day: "5000.00", confirm_above: "100.00" }
`,
  other: `agent: other
tools:
  refund:
    limits:
      EUR: { per_call: "1000.00", confirm_above: "100.00" }
`,
  strict: `agent: strict
tools:
  refund:
    limits:
      EUR: { per_call: "100.00" }
    confirm: true
`,
  trusted: `agent: trusted
token_sha256: ${HTTP_TRUSTED.sha256}
confirm_in_client: true
tools:
  refund:
    limits:
      EUR: { per_call: "1000.00", confirm_above: "100.00" }
`,
  capped: `agent: capped
tools:
  refund:
    limits:
      EUR: { per_call: "300.00", per_day: "300.00", confirm_above: "100.00" }
`,
};

let double: MollieApiDouble;
let workspace: Workspace;
const servers: ServerHandle[] = [];

async function stdio(agent: string, options: { elicit?: ElicitHandler; env?: Record<string, string>; protocol?: 'legacy' | 'modern' } = {}): Promise<ServerHandle> {
  const server = await spawnServer({
    agent,
    workspace,
    // desk is also an HTTP agent, so its policy has a token that stdio must present too.
    ...(agent === 'desk' ? { token: HTTP_DESK.token } : {}),
    env: { ...mollieDoubleEnv(double.url), ...options.env },
    clientName: options.elicit ? 'prompting-client' : 'plain-client',
    ...(options.elicit ? { elicit: options.elicit } : {}),
    ...(options.protocol ? { protocol: options.protocol } : {}),
  });
  servers.push(server);
  return server;
}

let invoice = 0;
/** A paid 5000.00 EUR payment for a fresh invoice, made directly at the double. */
async function paidPayment(): Promise<{ id: string; invoiceId: string }> {
  invoice += 1;
  const invoiceId = `APPROVE-${invoice}`;
  const payment = await double.simulator.createPayment(
    { amount: { value: '5000.00', currency: 'EUR' }, description: `Invoice ${invoiceId}`, redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: invoiceId } },
    { idempotencyKey: `approve-${invoice}` },
  );
  double.simulator.simulate(payment.id, 'paid');
  return { id: payment.id, invoiceId };
}

function refundPosts(paymentId: string): number {
  return double.requests.filter((request) => request.method === 'POST' && request.path === `/v2/payments/${paymentId}/refunds`).length;
}

function rows(where: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare(`SELECT * FROM audit_log WHERE ${where} ORDER BY seq`).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

function approvalState(approvalId: string): string {
  const db = openStoreForTest(workspace);
  try {
    return (db.prepare('SELECT state FROM approvals WHERE approval_id = ?').get(approvalId) as { state: string }).state;
  } finally {
    db.close();
  }
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...storeEnv(workspace), USER: 'fallback-user' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

type ErrorShape = { code: string; reason?: string; message: string; approval_id?: string; retryable: boolean };
function errorOf(result: { structuredContent: Record<string, unknown> }): ErrorShape {
  return result.structuredContent.error as ErrorShape;
}

/** Asks for an approval through a client that cannot prompt; returns its id. */
async function askOutOfBand(server: ServerHandle, paymentId: string, amount: string, allowRepeat = false): Promise<string> {
  const asked = await server.call('refund', { payment_id: paymentId, amount, ...(allowRepeat ? { allow_repeat: true } : {}) });
  expect(asked.isError).toBe(true);
  const error = errorOf(asked);
  expect(error).toMatchObject({ code: 'approval_required', reason: 'approval_required', retryable: true });
  return error.approval_id!;
}

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace(POLICIES);
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close().catch(() => undefined)));
  await double.close();
  workspace.remove();
});

describe('in the client (elicitation)', () => {
  it('a refund under confirm_above goes ahead without asking anyone', async () => {
    const prompts: ElicitRequest[] = [];
    const desk = await stdio('desk', { elicit: async (request) => (prompts.push(request), { action: 'decline' }) });
    const payment = await paidPayment();
    const small = await desk.call('refund', { payment_id: payment.id, amount: '100.00' });
    expect(small.isError).toBe(false);
    expect(prompts).toHaveLength(0);
  });

  it('a person who accepts lets the refund through; the question names agent, tool, amount, payment and invoice', async () => {
    const prompts: ElicitRequest[] = [];
    const desk = await stdio('desk', { elicit: async (request) => (prompts.push(request), { action: 'accept', content: { approve: true } }) });
    const payment = await paidPayment();
    const refunded = await desk.call('refund', { payment_id: payment.id, amount: '250.00' });
    expect(refunded.isError).toBe(false);
    expect(refundPosts(payment.id)).toBe(1);
    expect(prompts).toHaveLength(1);
    const message = prompts[0]!.params.message;
    for (const part of ['Agent "desk"', 'refund 250.00 EUR', `payment ${payment.id}`, `invoice ${payment.invoiceId}`, 'over 100.00 EUR']) expect(message).toContain(part);
    expect(prompts[0]!.params).toMatchObject({ requestedSchema: { properties: { approve: { type: 'boolean' } }, required: ['approve'] } });

    const trail = rows('call_id = ?', refunded.structuredContent.audit_id);
    expect(trail.map((row) => [row.kind, row.reason ?? row.outcome])).toEqual([
      ['event', 'confirmation_asked'],
      ['event', 'confirmation_accepted'],
      ['decision', 'confirmed'],
      ['outcome', 'ok'],
    ]);
    expect(trail[2]!.reason_message).toContain('Confirmed in the client (the person at prompting-client approved it, as the client reported: its word, not a person this server authenticated).');
    expect(trail[2]!.rule).toContain('confirm_above = 100.00');
  });

  for (const [name, answer, reason] of [
    ['declines', { action: 'decline' }, 'declined'],
    ['answers no', { action: 'accept', content: { approve: false } }, 'declined'],
    ['dismisses the prompt', { action: 'cancel' }, 'canceled'],
  ] as const) {
    it(`a person who ${name}: confirmation_declined, nothing sent to Mollie, the answer in the log`, async () => {
      const desk = await stdio('desk', { elicit: async () => answer as ElicitResult });
      const payment = await paidPayment();
      const refused = await desk.call('refund', { payment_id: payment.id, amount: '250.00' });
      expect(errorOf(refused)).toMatchObject({ code: 'confirmation_declined', reason, retryable: false });
      expect(errorOf(refused).message).toContain('nothing was sent to Mollie');
      expect(refundPosts(payment.id)).toBe(0);
      const trail = rows('call_id = ?', refused.structuredContent.audit_id);
      expect(trail.map((row) => [row.kind, row.reason ?? row.error_code])).toEqual([
        ['event', 'confirmation_asked'],
        ['event', `confirmation_${reason}`],
        ['decision', 'confirmation_declined'],
        ['outcome', 'confirmation_declined'],
      ]);
      expect(trail[2]!.decision).toBe('denied');
    });
  }

  it('no answer within the timeout is a refusal (2025-11-25: the server waits; see input-required.test.ts for 2026-07-28)', async () => {
    const desk = await stdio('desk', { elicit: () => new Promise<ElicitResult>(() => undefined), env: { MOLLIE_MCP_CONFIRM_TIMEOUT_SECONDS: '1' }, protocol: 'legacy' });
    const payment = await paidPayment();
    const refused = await desk.call('refund', { payment_id: payment.id, amount: '250.00' });
    expect(errorOf(refused)).toMatchObject({ code: 'confirmation_declined', reason: 'no_answer' });
    expect(errorOf(refused).message).toContain('did not answer within 1 s');
    expect(refundPosts(payment.id)).toBe(0);
  });

  it('MOLLIE_MCP_CONFIRM_IN_CLIENT=0 sends approvals out of band even for a client that could ask', async () => {
    let asked = 0;
    const desk = await stdio('desk', { elicit: async () => (asked++, { action: 'accept', content: { approve: true } }), env: { MOLLIE_MCP_CONFIRM_IN_CLIENT: '0' } });
    const payment = await paidPayment();
    const approvalId = await askOutOfBand(desk, payment.id, '250.00');
    expect(approvalId).toMatch(/^ap_/);
    expect(asked).toBe(0);
    expect(refundPosts(payment.id)).toBe(0);
  });

  it('confirm: true asks about every call, however small', async () => {
    let asked = 0;
    const strict = await stdio('strict', { elicit: async () => (asked++, { action: 'accept', content: { approve: true } }) });
    const payment = await paidPayment();
    expect((await strict.call('refund', { payment_id: payment.id, amount: '1.00' })).isError).toBe(false);
    expect(asked).toBe(1);
  });

  it('a call the caps deny is denied without bothering anyone', async () => {
    let asked = 0;
    const strict = await stdio('strict', { elicit: async () => (asked++, { action: 'accept', content: { approve: true } }) });
    const payment = await paidPayment();
    const over = await strict.call('refund', { payment_id: payment.id, amount: '150.00' });
    expect(errorOf(over)).toMatchObject({ code: 'policy_denied', reason: 'per_call_exceeded' });
    expect(asked).toBe(0);
  });

  it('over HTTP, an agent holding its token cannot approve its own refund: by default the approval goes out of band', async () => {
    const server = await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url) });
    try {
      let asked = 0;
      // The "client" is the agent itself: it declares elicitation and says yes to anything.
      const desk = await server.connect(HTTP_DESK.token, { elicit: async () => (asked++, { action: 'accept', content: { approve: true } }) });
      const payment = await paidPayment();
      const refunded = await desk.call('refund', { payment_id: payment.id, amount: '300.00' });
      expect(refunded.structuredContent.error).toMatchObject({ code: 'approval_required', approval_id: expect.stringMatching(/^ap_/) });
      expect(asked).toBe(0);
      expect(await double.simulator.listRefunds(payment.id)).toEqual([]);
      await desk.close();
    } finally {
      await server.stop();
    }
  });

  it('over HTTP with confirm_in_client: true, the prompt reaches the client on its session, and the row says whose word it was', async () => {
    const server = await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url) });
    try {
      const prompts: string[] = [];
      const trusted = await server.connect(HTTP_TRUSTED.token, { clientName: 'finance-console', elicit: async (request) => (prompts.push(request.params.message), { action: 'accept', content: { approve: true } }) });
      const payment = await paidPayment();
      const refunded = await trusted.call('refund', { payment_id: payment.id, amount: '300.00' });
      expect(refunded.isError).toBe(false);
      expect(prompts).toEqual([expect.stringContaining('refund 300.00 EUR')]);
      const db = openStoreForTest(workspace);
      const decision = db.prepare("SELECT reason, reason_message FROM audit_log WHERE call_id = ? AND kind = 'decision'").get(String(refunded.structuredContent.audit_id)) as { reason: string; reason_message: string };
      db.close();
      expect(decision.reason).toBe('confirmed');
      expect(decision.reason_message).toMatch(/^Confirmed in the client \(the person at finance-console approved it, as the client reported: its word, not a person this server authenticated\)\./);
      await trusted.close();
    } finally {
      await server.stop();
    }
  });
});

describe('out of band (a client that cannot ask)', () => {
  it('approval_required, then `approve`, then the same call with approval_id goes through exactly once', async () => {
    const desk = await stdio('desk');
    const payment = await paidPayment();
    // allow_repeat: the second use below must meet the approval's own single-use rule, not the duplicate guard.
    const approvalId = await askOutOfBand(desk, payment.id, '400.00', true);
    expect(approvalId).toMatch(/^ap_[A-Za-z0-9]{24}$/);
    expect(refundPosts(payment.id)).toBe(0);

    const listed = await cli('approvals');
    expect(listed.stdout).toContain(`${approvalId}  desk wants to refund 400.00 EUR of payment ${payment.id} (invoice ${payment.invoiceId})`);

    // Used before anyone approved it: still waiting, nothing sent.
    const early = await desk.call('refund', { payment_id: payment.id, amount: '400.00', allow_repeat: true, approval_id: approvalId });
    expect(errorOf(early)).toMatchObject({ code: 'approval_required', reason: 'approval_pending', approval_id: approvalId });
    expect(refundPosts(payment.id)).toBe(0);

    const approved = await cli('approve', approvalId);
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(/^Approved by \S+: approval ap_/);
    for (const part of ['agent:    desk', 'tool:     refund', 'amount:   400.00 EUR', `payment:  ${payment.id}`, `invoice:  ${payment.invoiceId}`, 'asked:    ', 'expires:  ']) {
      expect(approved.stdout).toContain(part);
    }
    const approver = /^Approved by (\S+):/.exec(approved.stdout)![1]!;

    const used = await desk.call('refund', { payment_id: payment.id, amount: '400.00', allow_repeat: true, approval_id: approvalId });
    expect(used.isError).toBe(false);
    expect(refundPosts(payment.id)).toBe(1);
    const decision = rows("call_id = ? AND kind = 'decision'", used.structuredContent.audit_id)[0]!;
    expect(decision.reason_message).toContain(`Approved by ${approver} (approval ${approvalId}).`);

    const again = await desk.call('refund', { payment_id: payment.id, amount: '400.00', allow_repeat: true, approval_id: approvalId });
    expect(errorOf(again)).toMatchObject({ code: 'policy_denied', reason: 'approval_used' });
    expect(refundPosts(payment.id)).toBe(1);

    // The approval's own story, in order, under its id.
    const story = rows("call_id = ? AND kind = 'event'", approvalId);
    expect(story.map((row) => row.reason)).toEqual(['approval_asked', 'approval_approved', 'approval_used']);
    expect(JSON.parse(String(story[1]!.arguments))).toMatchObject({ approval_id: approvalId, by: approver });
    expect(story[1]).toMatchObject({ agent: 'desk', transport: 'cli', amount_value: '400.00', payment_id: payment.id });
    expect(approvalState(approvalId)).toBe('used');
    expect((await cli('approve', approvalId)).stderr).toContain('was already approved by');
  });

  it('another agent cannot use it, and a different amount does not match', async () => {
    const desk = await stdio('desk');
    const other = await stdio('other');
    const payment = await paidPayment();
    const approvalId = await askOutOfBand(desk, payment.id, '400.00');
    expect((await cli('approve', approvalId)).code).toBe(0);

    const stolen = await other.call('refund', { payment_id: payment.id, amount: '400.00', approval_id: approvalId });
    expect(errorOf(stolen)).toMatchObject({ code: 'policy_denied', reason: 'approval_wrong_agent' });
    const bigger = await desk.call('refund', { payment_id: payment.id, amount: '500.00', approval_id: approvalId });
    expect(errorOf(bigger)).toMatchObject({ code: 'policy_denied', reason: 'approval_mismatch' });
    expect(errorOf(bigger).message).toContain('refund 400.00 EUR');
    const remainder = await desk.call('refund', { payment_id: payment.id, approval_id: approvalId });
    expect(errorOf(remainder).reason).toBe('approval_mismatch');
    expect(refundPosts(payment.id)).toBe(0);
    // None of those spent it.
    expect(approvalState(approvalId)).toBe('approved');
    expect((await desk.call('refund', { payment_id: payment.id, amount: '400.00', approval_id: approvalId })).isError).toBe(false);
  });

  it('a rejected approval refuses the call', async () => {
    const desk = await stdio('desk');
    const payment = await paidPayment();
    const approvalId = await askOutOfBand(desk, payment.id, '400.00');
    const rejected = await cli('reject', approvalId);
    expect(rejected.stdout).toMatch(/^Rejected by \S+: approval ap_/);
    const refused = await desk.call('refund', { payment_id: payment.id, amount: '400.00', approval_id: approvalId });
    expect(errorOf(refused)).toMatchObject({ code: 'policy_denied', reason: 'approval_rejected' });
    expect(refundPosts(payment.id)).toBe(0);
    expect(rows("call_id = ? AND kind = 'event'", approvalId).map((row) => row.reason)).toEqual(['approval_asked', 'approval_rejected']);
  });

  it('an approval expires: not usable after its time, and too late to approve', async () => {
    const desk = await stdio('desk', { env: { MOLLIE_MCP_APPROVAL_TTL_SECONDS: '2' } });
    const payment = await paidPayment();
    const approved = await askOutOfBand(desk, payment.id, '400.00');
    expect((await cli('approve', approved)).code).toBe(0);
    const unapproved = await askOutOfBand(desk, payment.id, '401.00');
    await new Promise((resolve) => setTimeout(resolve, 2500));

    const late = await desk.call('refund', { payment_id: payment.id, amount: '400.00', approval_id: approved });
    expect(errorOf(late)).toMatchObject({ code: 'policy_denied', reason: 'approval_expired' });
    expect(errorOf(late).message).toContain('before it was used');
    const tooLate = await cli('approve', unapproved);
    expect(tooLate.code).toBe(1);
    expect(tooLate.stderr).toContain('expired');
    expect(refundPosts(payment.id)).toBe(0);
    expect(rows("call_id = ? AND kind = 'event'", approved).map((row) => row.reason)).toEqual(['approval_asked', 'approval_approved', 'approval_expired']);
    expect(rows("call_id = ? AND kind = 'event'", unapproved).map((row) => row.reason)).toEqual(['approval_asked', 'approval_expired']);
  });

  it('an approved call still meets its caps and budgets', async () => {
    const capped = await stdio('capped');
    const payment = await paidPayment();
    const approvalId = await askOutOfBand(capped, payment.id, '200.00');
    const first = await askOutOfBand(capped, payment.id, '120.00');
    expect((await cli('approve', approvalId)).code).toBe(0);
    expect((await cli('approve', first)).code).toBe(0);
    // Meanwhile the agent spends 120.00 of its 300.00 a day on another approved refund.
    expect((await capped.call('refund', { payment_id: payment.id, amount: '120.00', approval_id: first })).isError).toBe(false);
    const over = await capped.call('refund', { payment_id: payment.id, amount: '200.00', approval_id: approvalId });
    expect(errorOf(over)).toMatchObject({ code: 'policy_denied', reason: 'per_day_exceeded' });
    expect(refundPosts(payment.id)).toBe(1);
    // Not spent by a call the budget refused.
    expect(approvalState(approvalId)).toBe('approved');
  });

  it('confirm_above holds over 24 hours: small refunds that together pass it need a person too', async () => {
    const capped = await stdio('capped');
    const payment = await paidPayment();
    // 60.00 and 40.00 stay within confirm_above (100.00) together; the next 0.01 would not.
    expect((await capped.call('refund', { payment_id: payment.id, amount: '60.00' })).isError).toBe(false);
    expect((await capped.call('refund', { payment_id: payment.id, amount: '40.00' })).isError).toBe(false);
    const third = await capped.call('refund', { payment_id: payment.id, amount: '60.00', allow_repeat: true });
    expect(errorOf(third)).toMatchObject({ code: 'approval_required', approval_id: expect.stringMatching(/^ap_/) });
    expect(errorOf(third).message).toMatch(/would bring what agent "capped" moved with refund in the last 24 hours without a person's approval to 160\.00 EUR, over 100\.00 EUR/);
    expect(refundPosts(payment.id)).toBe(2);
  });

  it('refuses an approval id it never issued, and the commands refuse a malformed one', async () => {
    const desk = await stdio('desk');
    const payment = await paidPayment();
    const unknown = await desk.call('refund', { payment_id: payment.id, amount: '400.00', approval_id: 'ap_AAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(errorOf(unknown)).toMatchObject({ code: 'policy_denied', reason: 'approval_unknown' });
    const malformed = await desk.call('refund', { payment_id: payment.id, amount: '400.00', approval_id: 'approve-me' });
    expect(errorOf(malformed)).toMatchObject({ code: 'invalid_input', field: 'approval_id' });
    const command = await cli('approve', 'approve-me');
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('approve needs the approval id');
    expect(refundPosts(payment.id)).toBe(0);
  });
});

describe('policy explain', () => {
  it('says when a person must approve, and above what', async () => {
    const run = async (...args: string[]) => (await exec(process.execPath, [CLI, 'policy', 'explain', '--policies', workspace.policies, ...args])).stdout;
    expect(await run('--agent', 'desk', '--tool', 'refund', '--amount', '250.00 EUR')).toMatch(/approval: a person must approve it first \(\S*desk\.yaml: tools\.refund\.limits\.EUR\.confirm_above = 100\.00\)/);
    expect(await run('--agent', 'desk', '--tool', 'refund', '--amount', '50.00 EUR')).toContain('approval: not needed; needed above 100.00 EUR (confirm_above)');
    expect(await run('--agent', 'strict', '--tool', 'refund')).toContain('tools.refund.confirm = true');
  });
});

describe('what an auditor reads', () => {
  it("list_logs names the person who let each approved refund through", async () => {
    const db = openStoreForTest(workspace);
    let entries: { summary: string }[];
    try {
      const { listCalls } = await import('../../src/audit/call-entries.js');
      entries = listCalls(db as never, { tool: 'refund', decision: 'allowed' }, 200).entries;
    } finally {
      db.close();
    }
    const summaries = entries.map((entry) => entry.summary);
    expect(summaries.some((summary) => /^desk asked to refund 400\.00 of payment tr_\w+: allowed, approved by \S+ \(approval ap_\w{24}\); refund re_\w+ of 400\.00 EUR is pending\.$/.test(summary))).toBe(true);
    expect(summaries.some((summary) => /allowed, confirmed in the client \(the person at prompting-client approved it, as the client reported: its word, not a person this server authenticated\); refund re_\w+/.test(summary))).toBe(true);
  });
});

describe('trying it on the simulator with the default database', () => {
  // The default SQLite files of a person trying the simulator; a PostgreSQL store is always named.
  it.skipIf(ON_POSTGRES)('`approve` finds the approval in the simulator\'s default database without MOLLIE_MCP_DB', async () => {
    const token = newToken();
    const sandbox = createWorkspace({ shop: `agent: shop\ntoken_sha256: ${token.sha256}\ntools:\n  create_invoice_payment:\n    limits:\n      EUR: { per_call: "500.00" }\n  refund:\n    limits:\n      EUR: { per_call: "500.00", confirm_above: "10.00" }\n` });
    // No MOLLIE_MCP_DB: the server uses the simulator's default file under HOME.
    const server = await spawnHttpServer({ workspace: sandbox, env: { MOLLIE_MCP_DB: '' } });
    try {
      const shop = await server.connect(token.token);
      const created = await shop.call('create_invoice_payment', { invoice_id: 'TRY-1', amount: '50.00', kind: 'checkout' });
      const checkout = String(created.structuredContent.checkout_url);
      const { rawRequest } = await import('../support/http-server.js');
      expect((await rawRequest(checkout, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'outcome=paid' })).status).toBe(303);
      const asked = await shop.call('refund', { payment_id: String(created.structuredContent.payment_id), amount: '20.00' });
      const approvalId = (asked.structuredContent.error as { approval_id: string }).approval_id;
      const run = async (...args: string[]) => {
        try {
          return (await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: sandbox.dir } })).stdout;
        } catch (error) {
          return `exit ${(error as { code: number }).code}: ${(error as { stderr: string }).stderr}`;
        }
      };
      expect(await run('approvals')).toContain(approvalId);
      expect(await run('approve', approvalId)).toMatch(/^Approved by /);
      const refunded = await shop.call('refund', { payment_id: String(created.structuredContent.payment_id), amount: '20.00', approval_id: approvalId });
      expect(refunded.isError).toBe(false);
      await shop.close();
    } finally {
      await server.stop();
      sandbox.remove();
    }
  });
});
