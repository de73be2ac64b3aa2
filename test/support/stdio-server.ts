import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client } from '@modelcontextprotocol/client';
import type { CallToolResult, ElicitRequest, ElicitResult } from '@modelcontextprotocol/client';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { produced, producedWorkspace, secret } from './leak-watch.js';
import { createStoreDatabase, dropStoreDatabase, ON_POSTGRES } from './store-under-test.js';
import { negotiation } from './protocol-under-test.js';

export const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
export const EXAMPLE_POLICIES = new URL('../../policies/', import.meta.url).pathname;

export interface Workspace {
  dir: string;
  policies: string;
  db: string;
  /** With MIM_TEST_STORE=postgres: the workspace's own PostgreSQL database, which servers use instead of `db`. */
  databaseUrl: string | null;
  writePolicy(name: string, yaml: string): void;
  remove(): void;
}

export function createWorkspace(policies: Record<string, string> = {}): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'mim-test-'));
  const policyDir = join(dir, 'policies');
  const databaseUrl = ON_POSTGRES ? createStoreDatabase() : null;
  const workspace: Workspace = {
    dir,
    policies: policyDir,
    db: join(dir, 'audit.db'),
    databaseUrl,
    writePolicy(name, yaml) {
      writeFileSync(join(policyDir, `${name}.yaml`), yaml);
    },
    remove() {
      producedWorkspace(dir, join(dir, 'audit.db'), databaseUrl);
      rmSync(dir, { recursive: true, force: true });
      if (databaseUrl !== null) dropStoreDatabase(databaseUrl);
    },
  };
  mkdirSync(policyDir);
  for (const [name, yaml] of Object.entries(policies)) workspace.writePolicy(name, yaml);
  return workspace;
}

export interface ServerHandle {
  client: Client;
  /** The server process, e.g. to kill it. */
  pid: number | null;
  stderr(): string;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult & { structuredContent: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface SpawnOptions {
  agent?: string;
  token?: string;
  workspace: Workspace;
  /** Extra environment (a Mollie key and endpoint for the https double); without MOLLIE_API_KEY the simulator is used. */
  env?: Record<string, string>;
  clientName?: string;
  /** Makes the client declare elicitation and answer confirmation prompts with this. */
  elicit?: ElicitHandler;
  /** The protocol generation the client speaks; MIM_TEST_PROTOCOL's by default. */
  protocol?: 'legacy' | 'modern';
  /** Told of every tools/list_changed notification. */
  onToolsChanged?: () => void;
}

export type ElicitHandler = (request: ElicitRequest) => Promise<ElicitResult>;

/**
 * An SDK client as Claude Code or VS Code would be: with elicitation when `elicit` is given, without otherwise; of the
 * protocol generation under test (MIM_TEST_PROTOCOL) unless `protocol` says which.
 */
export function newClient(name: string, elicit?: ElicitHandler, protocol?: 'legacy' | 'modern', onToolsChanged?: () => void): Client {
  const client = new Client(
    { name, version: '1.0.0' },
    {
      ...(elicit ? { capabilities: { elicitation: {} } } : {}),
      ...negotiation(protocol),
      // On 2026-07-28 this is also what opens the subscriptions/listen stream the notifications come on.
      ...(onToolsChanged ? { listChanged: { tools: { autoRefresh: false, debounceMs: 0, onChanged: () => onToolsChanged() } } } : {}),
    },
  );
  if (elicit) client.setRequestHandler('elicitation/create', elicit);
  return client;
}

/** A spawned server's environment: nothing from the test process but PATH, the workspace's policies and database. */
export function workspaceEnv(workspace: Workspace): Record<string, string> {
  // Checkout port 0: many test servers start at once; the default port's fallback is tested where it matters.
  const store: Record<string, string> = workspace.databaseUrl !== null ? { MOLLIE_MCP_DATABASE_URL: workspace.databaseUrl } : { MOLLIE_MCP_DB: workspace.db };
  return { PATH: process.env.PATH ?? '', HOME: workspace.dir, MOLLIE_MCP_POLICIES: workspace.policies, ...store, MOLLIE_MCP_CHECKOUT_PORT: '0', LOG_LEVEL: 'info' };
}

export async function spawnServer(options: SpawnOptions): Promise<ServerHandle> {
  const env: Record<string, string> = {
    ...workspaceEnv(options.workspace),
    ...(options.agent !== undefined ? { MOLLIE_MCP_AGENT: options.agent } : {}),
    ...(options.token !== undefined ? { MOLLIE_MCP_TOKEN: secret(options.token) } : {}),
    ...options.env,
  };
  for (const name of ['MOLLIE_API_KEY', 'MOLLIE_ACCESS_TOKEN', 'MOLLIE_MCP_TOKEN']) if (env[name]) secret(env[name]);
  const args = [CLI, 'serve', ...(env.MOLLIE_API_KEY ? [] : ['--simulator'])];
  const transport = new StdioClientTransport({ command: process.execPath, args, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const client = newClient(options.clientName ?? 'e2e-test-client', options.elicit, options.protocol, options.onToolsChanged);
  await client.connect(transport);
  // Listing first lets the SDK client validate every structuredContent against the declared outputSchema.
  await client.listTools();
  return {
    client,
    pid: transport.pid,
    stderr: () => stderr,
    call: async (name, callArgs = {}) => {
      const result = (await client.callTool({ name, arguments: callArgs })) as CallToolResult & { structuredContent: Record<string, unknown> };
      produced(`${name} result (stdio)`, JSON.stringify(result));
      return result;
    },
    close: async () => {
      await client.close();
      produced('server log (stdio)', stderr);
    },
  };
}

/** The https Mollie double's settings for a spawned server: a test key, its endpoint, TLS checks off in that child. */
export function mollieDoubleEnv(url: string, key = 'test_e2eSuiteKeyMustNeverLeak012345'): Record<string, string> {
  return {
    MOLLIE_API_KEY: secret(key),
    MOLLIE_API_ENDPOINT: url,
    NODE_TLS_REJECT_UNAUTHORIZED: '0',
    MOLLIE_MCP_REDIRECT_URL: 'https://shop.example.com/thanks',
  };
}
