/**
 * Confirmation in a 2026-07-28 client, end to end: the built server over stdio and over HTTP (and two stateless
 * replicas with no affinity), the SDK v2 client pinned to the new protocol, Mollie played by the https double. The
 * call that needs a person's yes ends with an "input required" result; the client asks the person (its elicitation
 * handler) and repeats the call with the answer and the token it was given. What must hold: nothing reaches Mollie
 * before a yes; the yes counts once, for the same agent, arguments and amount; every step is in the audit log under
 * the one call's audit id, as for a 2025-11-25 client's prompt.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { CallToolResult, ElicitRequest, ElicitResult } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { produced } from '../support/leak-watch.js';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { newToken, spawnHttpServer, type HttpServerHandle } from '../support/http-server.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { negotiation } from '../support/protocol-under-test.js';
import { openStoreForTest } from '../support/store-under-test.js';
import { until } from '../support/waiting.js';

const TRUSTED = newToken();
const OTHER = newToken();
const TIGHT = newToken();

const LIMITS = `    limits:
      EUR: { per_call: "1000.00", per_day: "5000.00", confirm_above: "100.00" }`;
const POLICIES = {
  // Over HTTP a person is asked in the client only where the policy says the client is trusted to ask.
  trusted: `agent: trusted
token_sha256: ${TRUSTED.sha256}
confirm_in_client: true
rate_limit: { per_minute: 1000 }
tools:
  refund:
${LIMITS}
`,
  // One call a minute: the question and its repeat are one call.
  tight: `agent: tight
token_sha256: ${TIGHT.sha256}
confirm_in_client: true
rate_limit: { per_minute: 1 }
tools:
  refund:
${LIMITS}
`,
  other: `agent: other
token_sha256: ${OTHER.sha256}
confirm_in_client: true
rate_limit: { per_minute: 1000 }
tools:
  refund:
${LIMITS}
`,
};

type Result = CallToolResult & { structuredContent: Record<string, unknown> };
type Answer = (request: ElicitRequest) => ElicitResult;

let double: MollieApiDouble;
let workspace: Workspace;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace(POLICIES);
});

afterAll(async () => {
  await Promise.all(closers.map((close) => close().catch(() => undefined)));
  await double.close();
  workspace.remove();
});

let invoice = 0;
async function paidPayment(): Promise<string> {
  invoice += 1;
  const payment = await double.simulator.createPayment(
    { amount: { value: '5000.00', currency: 'EUR' }, description: `Invoice IR-${invoice}`, redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: `IR-${invoice}` } },
    { idempotencyKey: `input-required-${invoice}` },
  );
  double.simulator.simulate(payment.id, 'paid');
  return payment.id;
}

function refundPosts(paymentId: string): number {
  return double.requests.filter((request) => request.method === 'POST' && request.path === `/v2/payments/${paymentId}/refunds`).length;
}

function rowsOf(callId: string): Record<string, unknown>[] {
  const db = openStoreForTest(workspace);
  try {
    return db.prepare('SELECT kind, decision, reason, reason_message, outcome, error_code, client_name, transport FROM audit_log WHERE call_id = ? ORDER BY seq').all(callId) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

function errorOf(result: Result): { code: string; reason?: string; message: string } {
  return result.structuredContent.error as { code: string; reason?: string; message: string };
}

/** A 2026-07-28 client that answers every question with `answer`, recording the questions. */
function modernClient(name: string, answer: Answer, questions: string[], autoFulfill = true): Client {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: { elicitation: { form: {} } }, ...negotiation('modern'), inputRequired: { autoFulfill } });
  client.setRequestHandler('elicitation/create', async (request) => {
    questions.push(request.params.message);
    return answer(request);
  });
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>, where: string): Promise<Result> {
  const result = (await client.callTool({ name, arguments: args })) as Result;
  produced(`${name} result (${where}, 2026-07-28)`, JSON.stringify(result));
  return result;
}

/** The SDK's Streamable HTTP client transport to `server`, with an agent's bearer token. */
function bearerTransport(server: HttpServerHandle, token: string): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
}

const yes: Answer = () => ({ action: 'accept', content: { approve: true } });

/** What the audit log must show for a confirmed call: asked, the answer, allowed, done; one id, one client name. */
function expectConfirmedRows(callId: string, clientName: string): void {
  const rows = rowsOf(callId);
  expect(rows.map((row) => [row.kind, row.reason ?? row.outcome])).toEqual([
    ['event', 'confirmation_asked'],
    ['event', 'confirmation_accepted'],
    ['decision', 'confirmed'],
    ['outcome', 'ok'],
  ]);
  expect(new Set(rows.map((row) => row.client_name))).toEqual(new Set([clientName]));
  expect(String(rows[2]!.reason_message)).toMatch(new RegExp(`^Confirmed in the client \\(the person at ${clientName} approved it, as the client reported`));
}

describe.each(['stdio', 'http'] as const)('over %s, a 2026-07-28 client', (transport) => {
  let connect: (name: string, answer: Answer, questions: string[], options?: { autoFulfill?: boolean; token?: string }) => Promise<Client>;

  beforeAll(async () => {
    if (transport === 'stdio') {
      // The stdio test helper's own client is replaced by ours; the helper starts the built server and hands its env.
      connect = async (name, answer, questions, options = {}) => {
        const server: ServerHandle = await spawnServer({ agent: 'trusted', token: TRUSTED.token, workspace, env: mollieDoubleEnv(double.url), clientName: name, protocol: 'modern', elicit: async (request) => (questions.push(request.params.message), answer(request)) });
        closers.push(() => server.close());
        if (options.autoFulfill === false) throw new Error('manual mode is tested over HTTP');
        return server.client;
      };
    } else {
      const server: HttpServerHandle = await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url) });
      closers.push(() => server.stop());
      connect = async (name, answer, questions, options = {}) => {
        const client = modernClient(name, answer, questions, options.autoFulfill ?? true);
        await client.connect(bearerTransport(server, options.token ?? TRUSTED.token));
        closers.push(() => client.close());
        return client;
      };
    }
  });

  it('speaks 2026-07-28: no initialize, no session', async () => {
    const client = await connect('era-check', yes, []);
    expect(client.getProtocolEra()).toBe('modern');
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
  });

  it('accept: the person is asked before anything reaches Mollie, the repeat refunds once, and the log reads as one confirmed call', async () => {
    const questions: string[] = [];
    const client = await connect(`finance-${transport}`, yes, questions);
    const payment = await paidPayment();
    const refunded = await call(client, 'refund', { payment_id: payment, amount: '300.00' }, transport);
    expect(refunded.isError).toBe(false);
    expect(questions).toEqual([expect.stringMatching(/^Agent "trusted" wants to refund 300\.00 EUR of payment tr_\w+.*Approve it\?$/)]);
    expect(refundPosts(payment)).toBe(1);
    expectConfirmedRows(String(refunded.structuredContent.audit_id), `finance-${transport}`);
  });

  it('decline: nothing reaches Mollie, the call ends confirmation_declined, and the log says who declined', async () => {
    const client = await connect(`declining-${transport}`, () => ({ action: 'decline' }), []);
    const payment = await paidPayment();
    const refused = await call(client, 'refund', { payment_id: payment, amount: '300.00' }, transport);
    expect(errorOf(refused)).toMatchObject({ code: 'confirmation_declined', reason: 'declined' });
    expect(refundPosts(payment)).toBe(0);
    expect(rowsOf(String(refused.structuredContent.audit_id)).map((row) => [row.kind, row.reason ?? row.outcome])).toEqual([
      ['event', 'confirmation_asked'],
      ['event', 'confirmation_declined'],
      ['decision', 'confirmation_declined'],
      ['outcome', 'error'],
    ]);
  });

  it('a form answered "no" (approve: false) is a no', async () => {
    const client = await connect(`unticked-${transport}`, () => ({ action: 'accept', content: { approve: false } }), []);
    const payment = await paidPayment();
    const refused = await call(client, 'refund', { payment_id: payment, amount: '300.00' }, transport);
    expect(errorOf(refused)).toMatchObject({ code: 'confirmation_declined', reason: 'declined' });
    expect(refundPosts(payment)).toBe(0);
  });

  it('under the threshold nobody is asked', async () => {
    const questions: string[] = [];
    const client = await connect(`small-${transport}`, yes, questions);
    const payment = await paidPayment();
    expect((await call(client, 'refund', { payment_id: payment, amount: '20.00' }, transport)).isError).toBe(false);
    expect(questions).toEqual([]);
  });
});

describe('the repeat is checked (a client driving the rounds itself, over HTTP)', () => {
  let server: HttpServerHandle;

  beforeAll(async () => {
    server = await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url) });
    closers.push(() => server.stop());
  });

  async function manual(token = TRUSTED.token): Promise<Client> {
    const client = modernClient('manual', yes, [], false);
    await client.connect(bearerTransport(server, token));
    closers.push(() => client.close());
    return client;
  }

  /** The first round: the input-required result, with its question and the token to echo. */
  async function ask(client: Client, args: Record<string, unknown>): Promise<{ requestState: string; message: string }> {
    const first = (await client.callTool({ name: 'refund', arguments: args }, { allowInputRequired: true })) as unknown as {
      inputRequests: { approve: { method: string; params: { message: string } } };
      requestState: string;
    };
    expect(first.inputRequests.approve.method).toBe('elicitation/create');
    expect(first.requestState).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return { requestState: first.requestState, message: first.inputRequests.approve.params.message };
  }

  async function repeat(client: Client, args: Record<string, unknown>, requestState: string, approve = true): Promise<Result> {
    const result = (await client.callTool({ name: 'refund', arguments: args, inputResponses: { approve: { action: 'accept', content: { approve } } }, requestState } as never)) as Result;
    produced('refund result (manual repeat)', JSON.stringify(result));
    return result;
  }

  it('the first round asks and sends nothing to Mollie; the log shows the question, and the call still open', async () => {
    const client = await manual();
    const payment = await paidPayment();
    const asked = await ask(client, { payment_id: payment, amount: '300.00' });
    expect(asked.message).toContain('refund 300.00 EUR');
    expect(refundPosts(payment)).toBe(0);
  });

  it('a repeat with other arguments (another amount) is refused, and its yes is spent', async () => {
    const client = await manual();
    const payment = await paidPayment();
    const { requestState } = await ask(client, { payment_id: payment, amount: '150.00' });
    const refused = await repeat(client, { payment_id: payment, amount: '900.00' }, requestState);
    expect(errorOf(refused)).toMatchObject({ code: 'confirmation_declined', reason: 'answer_mismatch' });
    expect(refundPosts(payment)).toBe(0);
    const rows = rowsOf(String(refused.structuredContent.audit_id));
    expect(rows.map((row) => [row.kind, row.reason ?? row.outcome])).toEqual([
      ['event', 'confirmation_asked'],
      ['event', 'confirmation_accepted'],
      ['decision', 'confirmation_declined'],
      ['outcome', 'error'],
    ]);
    // Now with the right amount: the answer was counted already.
    const again = await repeat(client, { payment_id: payment, amount: '150.00' }, requestState);
    expect(errorOf(again)).toMatchObject({ code: 'confirmation_declined', reason: 'answer_used' });
    expect(refundPosts(payment)).toBe(0);
  });

  it('a replayed answer counts once: the refund is made once, the replay is refused under an audit id of its own', async () => {
    const client = await manual();
    const payment = await paidPayment();
    const args = { payment_id: payment, amount: '250.00', allow_repeat: true };
    const { requestState } = await ask(client, args);
    const done = await repeat(client, args, requestState);
    expect(done.isError).toBe(false);
    const replayed = await repeat(client, args, requestState);
    expect(errorOf(replayed)).toMatchObject({ code: 'confirmation_declined', reason: 'answer_used' });
    expect(errorOf(replayed).message).toContain(String(done.structuredContent.audit_id));
    expect(replayed.structuredContent.audit_id).not.toBe(done.structuredContent.audit_id);
    expect(refundPosts(payment)).toBe(1);
    expect(rowsOf(String(replayed.structuredContent.audit_id)).map((row) => [row.kind, row.reason ?? row.outcome])).toEqual([
      ['decision', 'confirmation_declined'],
      ['outcome', 'error'],
    ]);
  });

  it('a repeat concluded "no" ends the call; the same token cannot then say yes', async () => {
    const client = await manual();
    const payment = await paidPayment();
    const args = { payment_id: payment, amount: '300.00' };
    const { requestState } = await ask(client, args);
    expect(errorOf(await repeat(client, args, requestState, false))).toMatchObject({ code: 'confirmation_declined', reason: 'declined' });
    expect(errorOf(await repeat(client, args, requestState, true))).toMatchObject({ code: 'confirmation_declined', reason: 'answer_used' });
    expect(refundPosts(payment)).toBe(0);
  });

  it("another agent cannot use an agent's answer, and a made-up token is refused", async () => {
    const trusted = await manual();
    const other = await manual(OTHER.token);
    const payment = await paidPayment();
    const args = { payment_id: payment, amount: '300.00' };
    const { requestState } = await ask(trusted, args);
    expect(errorOf(await repeat(other, args, requestState))).toMatchObject({ code: 'confirmation_declined', reason: 'answer_unknown' });
    expect(errorOf(await repeat(trusted, args, 'A'.repeat(43)))).toMatchObject({ code: 'confirmation_declined', reason: 'answer_unknown' });
    expect(errorOf(await repeat(trusted, args, 'not a token at all'))).toMatchObject({ code: 'confirmation_declined', reason: 'answer_unknown' });
    expect(refundPosts(payment)).toBe(0);
    // The agent that was asked still can: its question is open until it is answered or expires.
    expect((await repeat(trusted, args, requestState)).isError).toBe(false);
    expect(refundPosts(payment)).toBe(1);
  });
});

describe('found by a hostile review', () => {
  let server: HttpServerHandle;

  beforeAll(async () => {
    server = await spawnHttpServer({ workspace, env: { ...mollieDoubleEnv(double.url), MOLLIE_MCP_REFUSED_CALLS_PER_MINUTE: '2', MOLLIE_MCP_SESSIONS_PER_AGENT: '2' } });
    closers.push(() => server.stop());
  });

  async function client(token: string, autoFulfill = true): Promise<Client> {
    const connected = modernClient('reviewed', yes, [], autoFulfill);
    await connected.connect(bearerTransport(server, token));
    closers.push(() => connected.close());
    return connected;
  }

  async function repeat(connected: Client, args: Record<string, unknown>, requestState: string): Promise<Result> {
    return (await connected.callTool({ name: 'refund', arguments: args, inputResponses: { approve: { action: 'accept', content: { approve: true } } }, requestState } as never)) as Result;
  }

  it('under a rate limit of one call a minute, the question and its repeat count as the one call they are', async () => {
    const tight = await client(TIGHT.token);
    const payment = await paidPayment();
    const refunded = await call(tight, 'refund', { payment_id: payment, amount: '300.00' }, 'http');
    expect(refunded.isError).toBe(false);
    expect(refundPosts(payment)).toBe(1);
    // And the next call in that minute is over the limit.
    expect(errorOf(await call(tight, 'refund', { payment_id: payment, amount: '20.00' }, 'http'))).toMatchObject({ code: 'policy_denied', reason: 'rate_limit_exceeded' });
  });

  it("a repeat that needs no yes any more (a smaller refund of another payment) is still refused: the yes was for the call asked about", async () => {
    const manual = await client(TRUSTED.token, false);
    const asked = await paidPayment();
    const other = await paidPayment();
    const first = (await manual.callTool({ name: 'refund', arguments: { payment_id: asked, amount: '300.00' } }, { allowInputRequired: true })) as unknown as { requestState: string };
    const refused = await repeat(manual, { payment_id: other, amount: '20.00' }, first.requestState);
    expect(errorOf(refused)).toMatchObject({ code: 'confirmation_declined', reason: 'answer_mismatch' });
    expect(refundPosts(asked) + refundPosts(other)).toBe(0);
  });

  it('the repeat of an asked call writes its rows even when the agent is over its refused-calls budget', async () => {
    const manual = await client(TRUSTED.token, false);
    const payment = await paidPayment();
    const first = (await manual.callTool({ name: 'refund', arguments: { payment_id: payment, amount: '300.00' } }, { allowInputRequired: true })) as unknown as { requestState: string };
    for (let i = 0; i < 3; i++) await manual.callTool({ name: 'no_such_tool', arguments: {} });
    const refused = await repeat(manual, { payment_id: payment, amount: 'abc' }, first.requestState);
    expect(errorOf(refused)).toMatchObject({ code: 'invalid_input' });
    const rows = rowsOf(String(refused.structuredContent.audit_id));
    expect(rows.map((row) => row.kind)).toEqual(['event', 'event', 'decision', 'outcome']);
  });

  it('caps the subscription streams one agent may hold (MOLLIE_MCP_SESSIONS_PER_AGENT), and another agent still gets one', async () => {
    const a = await client(TRUSTED.token);
    const streams = [await a.listen({ toolsListChanged: true }), await a.listen({ toolsListChanged: true })];
    await expect(a.listen({ toolsListChanged: true })).rejects.toThrow(/already has 2 open subscription streams/);
    const b = await client(OTHER.token);
    const theirs = await b.listen({ toolsListChanged: true });
    for (const stream of [...streams, theirs]) await stream.close();
  });
});

it('on SIGTERM, an open subscription stream is ended by the server (its closing result), and the server exits', async () => {
  const server = await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url) });
  const listener = modernClient('listener', yes, []);
  await listener.connect(bearerTransport(server, TRUSTED.token));
  const stream = await listener.listen({ toolsListChanged: true });
  expect(await server.stop()).toBe(0);
  expect(await stream.closed).toBe('graceful');
  await listener.close();
});

describe('a question nobody answers (MOLLIE_MCP_CONFIRM_TIMEOUT_SECONDS=1)', () => {
  let server: HttpServerHandle;

  beforeAll(async () => {
    server = await spawnHttpServer({ workspace, env: { ...mollieDoubleEnv(double.url), MOLLIE_MCP_CONFIRM_TIMEOUT_SECONDS: '1' } });
    closers.push(() => server.stop());
  });

  async function firstRound(paymentId: string): Promise<{ client: Client; requestState: string; callId: string }> {
    const client = modernClient('walked-away', yes, [], false);
    await client.connect(bearerTransport(server, TRUSTED.token));
    closers.push(() => client.close());
    const first = (await client.callTool({ name: 'refund', arguments: { payment_id: paymentId, amount: '300.00' } }, { allowInputRequired: true })) as unknown as { requestState: string };
    const db = openStoreForTest(workspace);
    const row = db.prepare("SELECT call_id FROM audit_log WHERE reason = 'confirmation_asked' AND agent = 'trusted' ORDER BY seq DESC LIMIT 1").get() as { call_id: string };
    db.close();
    return { client, requestState: first.requestState, callId: row.call_id };
  }

  it('is closed as a prompt nobody answered, by the server, without a repeat: the call does not stay open', async () => {
    const payment = await paidPayment();
    const { callId } = await firstRound(payment);
    await until(() => rowsOf(callId).length === 4, 'the unanswered question to be closed', 10_000);
    expect(rowsOf(callId).map((row) => [row.kind, row.reason ?? row.outcome])).toEqual([
      ['event', 'confirmation_asked'],
      ['event', 'confirmation_no_answer'],
      ['decision', 'confirmation_declined'],
      ['outcome', 'error'],
    ]);
    expect(String(rowsOf(callId)[1]!.reason_message)).toContain('did not answer within 1 s');
    expect(refundPosts(payment)).toBe(0);
  });

  it('a yes that comes after the question expired does not count', async () => {
    const payment = await paidPayment();
    const { client, requestState, callId } = await firstRound(payment);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const late = (await client.callTool({ name: 'refund', arguments: { payment_id: payment, amount: '300.00' }, inputResponses: { approve: { action: 'accept', content: { approve: true } } }, requestState } as never)) as Result;
    expect(errorOf(late)).toMatchObject({ code: 'confirmation_declined' });
    // Either the repeat found the question expired (no_answer, closing the call), or the server had closed it first.
    expect(['no_answer', 'answer_used']).toContain(errorOf(late).reason);
    expect(refundPosts(payment)).toBe(0);
    await until(() => rowsOf(callId).some((row) => row.kind === 'outcome'), 'the call to be closed', 10_000);
    expect(rowsOf(callId).filter((row) => row.kind === 'outcome')).toHaveLength(1);
  });
});

describe('two stateless replicas, no affinity', () => {
  it('the question is asked on one replica and answered on the other; the refund is made once', async () => {
    const replicas = [
      await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url), args: ['--stateless'] }),
      await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url), args: ['--stateless'] }),
    ];
    for (const replica of replicas) closers.push(() => replica.stop());
    const answeredBy: number[] = [];
    let next = 0;
    const questions: string[] = [];
    const client = modernClient('round-robin', yes, questions);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${replicas[0]!.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${TRUSTED.token}` } },
        fetch: async (input, init) => {
          const index = next++ % replicas.length;
          answeredBy.push(index);
          const url = new URL(String(input instanceof Request ? input.url : input));
          return fetch(`${replicas[index]!.url}${url.pathname}`, init);
        },
      }),
    );
    closers.push(() => client.close());
    const payment = await paidPayment();
    answeredBy.length = 0;
    const refunded = await call(client, 'refund', { payment_id: payment, amount: '300.00' }, 'stateless replicas');
    expect(refunded.isError).toBe(false);
    expect(questions).toHaveLength(1);
    // The call and its repeat: one request to each replica.
    expect(answeredBy).toHaveLength(2);
    expect(new Set(answeredBy)).toEqual(new Set([0, 1]));
    expect(refundPosts(payment)).toBe(1);
    expectConfirmedRows(String(refunded.structuredContent.audit_id), 'round-robin');
  });
});
