/**
 * `serve --transport http --stateless`: two replicas (two built server processes on one database) behind a
 * round-robin client, the SDK's Streamable HTTP client with a fetch that sends each request to the next replica.
 * No sessions, so no affinity: a call asked on one replica is approved out of band and used on the other; Mollie
 * (the https double) sees each refund once; the log is one chain. Each request gets its own server: concurrent
 * agents never see each other's answers.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { negotiation } from '../support/protocol-under-test.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { produced } from '../support/leak-watch.js';
import { startMollieApiDouble, type MollieApiDouble } from '../support/mollie-api-double.js';
import { MCP_HEADERS, initializeBody, newToken, rawRequest, spawnHttpServer, type HttpServerHandle } from '../support/http-server.js';
import { CLI, createWorkspace, mollieDoubleEnv, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest, storeEnv } from '../support/store-under-test.js';

const exec = promisify(execFile);
const DESK = newToken();
const CLERK = newToken();

const POLICIES = {
  desk: `agent: desk
token_sha256: ${DESK.sha256}
rate_limit: { per_minute: 1000 }
tools:
  refund:
    limits:
      EUR: { per_call: "1000.00", per_day: "5000.00", confirm_above: "100.00" }
  get_payment_status: {}
  list_logs: { scope: own }
`,
  clerk: `agent: clerk
token_sha256: ${CLERK.sha256}
rate_limit: { per_minute: 1000 }
tools:
  get_payment_status: {}
  list_logs: { scope: own }
`,
};

let double: MollieApiDouble;
let workspace: Workspace;
let replicas: HttpServerHandle[] = [];
/** Which replica answered each request, in order. */
const answeredBy: number[] = [];

type Result = CallToolResult & { structuredContent: Record<string, unknown> };

/** An SDK client whose every request goes to the next replica in turn. */
async function roundRobinClient(token: string, elicit = false): Promise<{ client: Client; call(name: string, args?: Record<string, unknown>): Promise<Result> }> {
  let next = 0;
  const transport = new StreamableHTTPClientTransport(new URL(`${replicas[0]!.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: async (input, init) => {
      const index = next++ % replicas.length;
      answeredBy.push(index);
      const url = new URL(String(input instanceof Request ? input.url : input));
      return fetch(`${replicas[index]!.url}${url.pathname}`, init);
    },
  });
  const client = new Client({ name: 'round-robin', version: '1.0.0' }, { capabilities: elicit ? { elicitation: { form: {} } } : {}, ...negotiation() });
  if (elicit) {
    client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { approve: true } }));
  }
  await client.connect(transport);
  await client.listTools();
  return {
    client,
    call: async (name, args = {}) => {
      const result = (await client.callTool({ name, arguments: args })) as Result;
      produced(`${name} result (stateless)`, JSON.stringify(result));
      return result;
    },
  };
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...storeEnv(workspace), USER: 'olga' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function paidPayment(invoiceId: string): Promise<string> {
  const payment = await double.simulator.createPayment(
    { amount: { value: '500.00', currency: 'EUR' }, description: `Invoice ${invoiceId}`, redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: invoiceId } },
    { idempotencyKey: `stateless-${invoiceId}` },
  );
  double.simulator.simulate(payment.id, 'paid');
  return payment.id;
}

beforeAll(async () => {
  double = await startMollieApiDouble();
  workspace = createWorkspace(POLICIES);
  replicas = await Promise.all([0, 1].map(() => spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url), args: ['--stateless'] })));
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.stop()));
  await double.close();
  workspace.remove();
});

describe('stateless HTTP replicas', () => {
  it('keep no session: no session id, and GET and DELETE are refused with what to do', async () => {
    const init = await rawRequest(`${replicas[0]!.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${DESK.token}` }, body: initializeBody() });
    expect(init.status).toBe(200);
    expect(init.headers['mcp-session-id']).toBeUndefined();
    expect(JSON.parse(init.body).result.capabilities.tools).toEqual({ listChanged: false });
    for (const method of ['GET', 'DELETE']) {
      const refused = await rawRequest(`${replicas[1]!.url}/mcp`, { method, headers: { Accept: 'text/event-stream', Authorization: `Bearer ${DESK.token}` } });
      expect(refused.status).toBe(405);
      expect(refused.body).toContain('this server is stateless');
    }
    // The bearer check still comes first, and still leaves its rows.
    const stranger = await rawRequest(`${replicas[1]!.url}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: initializeBody() });
    expect(stranger.status).toBe(401);
    expect(replicas[0]!.stderr()).toContain('"sessions":"none (stateless: approvals out of band)"');
  });

  it('ask for an approval on one replica, take it out of band, and use it on the other, once, with no prompt in the client', async () => {
    const desk = await roundRobinClient(DESK.token, true);
    const payment = await paidPayment('STATELESS-1');
    answeredBy.length = 0;
    const asked = await desk.call('refund', { payment_id: payment, amount: '300.00' });
    const error = asked.structuredContent.error as { code: string; approval_id: string };
    // The client declared elicitation and would say yes to anything: a stateless server never asks a 2025-11-25 client,
    // and desk's policy does not let its client confirm over HTTP.
    expect(error.code).toBe('approval_required');
    expect(error.approval_id).toMatch(/^ap_/);
    expect(await double.simulator.listRefunds(payment)).toEqual([]);

    const approved = await cli('approve', error.approval_id);
    expect(approved.code, approved.stderr).toBe(0);

    const used = await desk.call('refund', { payment_id: payment, amount: '300.00', approval_id: error.approval_id });
    expect(used.isError, JSON.stringify(used.structuredContent)).toBe(false);
    expect(new Set(answeredBy)).toEqual(new Set([0, 1]));
    const again = await desk.call('refund', { payment_id: payment, amount: '300.00', approval_id: error.approval_id });
    expect(again.isError).toBe(true);
    expect(await double.simulator.listRefunds(payment)).toHaveLength(1);

    const status = await desk.call('get_payment_status', { payment_id: payment });
    expect(status.structuredContent).toMatchObject({ status: 'paid', amount_refunded: { currency: 'EUR', value: '300.00' } });
    await desk.client.close();

    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout).toBe(0);
  });

  it('give each request its own server: two agents at once each get only their own answers', async () => {
    const [desk, clerk] = await Promise.all([roundRobinClient(DESK.token), roundRobinClient(CLERK.token)]);
    // Something of each agent's own in the log first.
    const payment = await paidPayment('STATELESS-2');
    await Promise.all([desk.call('get_payment_status', { payment_id: payment }), clerk.call('get_payment_status', { payment_id: payment })]);
    const calls = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? desk : clerk).call('list_logs', { limit: 5 }).then((result) => ({ who: i % 2 === 0 ? 'desk' : 'clerk', result })));
    for (const { who, result } of await Promise.all(calls)) {
      expect(result.isError).toBe(false);
      const entries = result.structuredContent.entries as { agent: string }[];
      expect(entries.length).toBeGreaterThan(0);
      expect(new Set(entries.map((entry) => entry.agent))).toEqual(new Set([who]));
    }
    await Promise.all([desk.client.close(), clerk.client.close()]);
    const db = openStoreForTest(workspace);
    const agents = db.prepare("SELECT agent, count(*) AS n FROM audit_log WHERE kind = 'decision' AND tool = 'list_logs' GROUP BY agent ORDER BY agent").all();
    db.close();
    expect(agents).toEqual([{ agent: 'clerk', n: 12 }, { agent: 'desk', n: 12 }]);
  });

  it('refuses --stateless without --transport http', async () => {
    const refused = await cli('serve', '--stateless');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--stateless applies to --transport http');
  });
});
