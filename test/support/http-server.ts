/**
 * Spawns the built server with `serve --transport http --port 0` and connects SDK Streamable HTTP clients to it, one
 * per agent token, as Claude Code or VS Code would with an `Authorization` header in their MCP configuration.
 */
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Client, CallToolResult } from '@modelcontextprotocol/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { produced, secret } from './leak-watch.js';
import { CLI, newClient, workspaceEnv, type ElicitHandler, type Workspace } from './stdio-server.js';

export interface AgentToken {
  token: string;
  sha256: string;
}

/** A fresh token and the token_sha256 line its policy needs, as `token create` makes them. */
export function newToken(): AgentToken {
  const token = secret(`mim_${randomBytes(32).toString('base64url')}`);
  return { token, sha256: createHash('sha256').update(token).digest('hex') };
}

export interface HttpServerHandle {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  connect(token: string, options?: { clientName?: string; headers?: Record<string, string>; elicit?: ElicitHandler; protocol?: 'legacy' | 'modern'; onToolsChanged?: () => void }): Promise<HttpClientHandle>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface HttpClientHandle {
  client: Client;
  transport: StreamableHTTPClientTransport;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult & { structuredContent: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface SpawnHttpOptions {
  workspace: Workspace;
  /** Extra environment (the Mollie double's settings); without MOLLIE_API_KEY the simulator is used. */
  env?: Record<string, string>;
  args?: string[];
}

export async function spawnHttpServer(options: SpawnHttpOptions): Promise<HttpServerHandle> {
  const env: Record<string, string> = { ...workspaceEnv(options.workspace), ...options.env };
  const args = [CLI, 'serve', '--transport', 'http', '--port', '0', ...(env.MOLLIE_API_KEY ? [] : ['--simulator']), ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      produced('server log (http)', stderr);
      resolve(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start listening:\n${stderr}`)), 15_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      const match = /"url":"(http:\/\/[^"]+)\/mcp"/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening:\n${stderr}`));
    });
  });
  if (stdout !== '') throw new Error(`the HTTP server wrote to stdout: ${stdout}`);
  const handle: HttpServerHandle = {
    url,
    child,
    stderr: () => stderr,
    exited,
    async connect(token, connectOptions = {}) {
      const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${token}`, ...connectOptions.headers } },
      });
      const client = newClient(connectOptions.clientName ?? 'e2e-http-client', connectOptions.elicit, connectOptions.protocol, connectOptions.onToolsChanged);
      await client.connect(transport);
      // Listing first lets the SDK client validate every structuredContent against the declared outputSchema.
      await client.listTools();
      return {
        client,
        transport,
        call: async (name, callArgs = {}) => {
          const result = (await client.callTool({ name, arguments: callArgs })) as CallToolResult & { structuredContent: Record<string, unknown> };
          produced(`${name} result (http)`, JSON.stringify(result));
          return result;
        },
        close: () => client.close(),
      };
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return handle;
}

/** A raw HTTP request (fetch cannot set Host), for the checks clients would never trip by themselves. */
export async function rawRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        produced(`HTTP answer ${init.method ?? 'GET'} ${url}`, `${JSON.stringify(res.headers)}\n${body}`);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export const MCP_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

export function initializeBody(id = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
}
