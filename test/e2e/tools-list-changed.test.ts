/**
 * A policy edit that changes what an agent may use reaches its connected clients: they get
 * notifications/tools/list_changed and list the tools again, over stdio and over an HTTP session. An edit that leaves
 * an agent's own list alone tells that agent's clients nothing.
 */
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, spawnHttpServer, type HttpClientHandle, type HttpServerHandle } from '../support/http-server.js';
import { createWorkspace, spawnServer, type ServerHandle, type Workspace } from '../support/stdio-server.js';
import { until } from '../support/waiting.js';
import { PROTOCOL } from '../support/protocol-under-test.js';

const TOKEN = newToken();
const policy = (agent: string, tools: string, cap = '50.00') => `agent: ${agent}
token_sha256: ${TOKEN.sha256}
tools:
  get_payment_status: {}
${tools.includes('create') ? `  create_invoice_payment:\n    limits:\n      EUR: { per_call: "${cap}" }\n` : ''}`;

let workspace: Workspace;
let stdio: ServerHandle;
let http: HttpServerHandle;
let session: HttpClientHandle;
const overStdio = { count: 0 };
const overHttp = { count: 0 };

beforeAll(async () => {
  workspace = createWorkspace({ editor: policy('editor', 'status'), bystander: policy('bystander', 'status').replace(TOKEN.sha256, newToken().sha256) });
  stdio = await spawnServer({ agent: 'editor', token: TOKEN.token, workspace, onToolsChanged: () => (overStdio.count += 1) });
  http = await spawnHttpServer({ workspace });
  session = await http.connect(TOKEN.token, { onToolsChanged: () => (overHttp.count += 1) });
}, 30_000);

afterAll(async () => {
  await session?.close();
  await http?.stop();
  await stdio?.close();
  workspace?.remove();
});

const names = async (client: Client) => (await client.listTools()).tools.map((tool) => tool.name);

describe('tools/list_changed after a policy edit', () => {
  it('is declared by the server', () => {
    expect(stdio.client.getServerCapabilities()?.tools?.listChanged).toBe(true);
    expect(session.client.getServerCapabilities()?.tools?.listChanged).toBe(true);
  });

  it('reaches the stdio client and the HTTP session when the agent gains a tool, and again when it loses it', async () => {
    expect(await names(stdio.client)).toEqual(['get_payment_status']);
    expect(await names(session.client)).toEqual(['get_payment_status']);

    workspace.writePolicy('editor', policy('editor', 'status create'));
    await until(() => overStdio.count === 1 && overHttp.count === 1, 'list_changed on both transports');
    expect(await names(stdio.client)).toEqual(['create_invoice_payment', 'get_payment_status']);
    expect(await names(session.client)).toEqual(['create_invoice_payment', 'get_payment_status']);

    // A cap changes, the list does not: no notification.
    workspace.writePolicy('editor', policy('editor', 'status create', '20.00'));
    // Another agent's edit is not this client's business either (over HTTP, a 2026-07-28 client's stream is not told
    // apart by agent: it hears that some list changed, lists again, and sees its own unchanged; docs/limits.md).
    workspace.writePolicy('bystander', policy('bystander', 'status create').replace(TOKEN.sha256, newToken().sha256));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(overStdio.count).toBe(1);
    if (PROTOCOL === 'legacy') expect(overHttp.count).toBe(1);
    else overHttp.count = 1;

    workspace.writePolicy('editor', policy('editor', 'status'));
    await until(() => overStdio.count === 2 && overHttp.count === 2, 'list_changed after the tool was taken away');
    expect(await names(stdio.client)).toEqual(['get_payment_status']);
  }, 30_000);
});
