/**
 * A third-party MCP client against the built server: the MCP Inspector CLI (`mcp-inspector --cli`, installed as a
 * devDependency, never fetched with npx) lists the tools and calls one over stdio, with the offline simulator and a
 * fresh SQLite file. The server's environment is handed over the way an Inspector user would, with `-e KEY=VALUE`;
 * the Inspector process itself gets only PATH and HOME (no Mollie key).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
const POLICIES = new URL('../../policies/', import.meta.url).pathname;
const INSPECTOR = new URL('../../node_modules/.bin/mcp-inspector', import.meta.url).pathname;

const TIMEOUT = 60_000;

interface Tool {
  name: string;
  inputSchema?: { type?: string; properties?: Record<string, unknown> };
  outputSchema?: { type?: string };
  annotations?: Record<string, unknown>;
}

let dir: string;
let runs = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mim-inspector-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `mcp-inspector --cli` against `node dist/src/cli.js serve --simulator` as `agent`; returns its parsed stdout. */
async function inspector(agent: string, method: string[], db = join(dir, `audit-${++runs}.db`)): Promise<Record<string, unknown>> {
  const args = [
    INSPECTOR,
    '--cli',
    '-e', `MOLLIE_MCP_AGENT=${agent}`,
    '-e', `MOLLIE_MCP_POLICIES=${POLICIES}`,
    '-e', `MOLLIE_MCP_DB=${db}`,
    process.execPath, CLI, 'serve', '--simulator',
    ...method,
  ];
  // The Inspector spawns `node` from PATH for its own CLI stage; put this Node first so every stage runs the same one.
  const env = {
    PATH: [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter),
    HOME: dir,
  };
  let stdout: string;
  let stderr: string;
  try {
    ({ stdout, stderr } = await exec(process.execPath, args, { env, cwd: dir, timeout: TIMEOUT - 10_000, maxBuffer: 10 * 1024 * 1024 }));
  } catch (error) {
    const failed = error as { code?: number | string; signal?: string | null; killed?: boolean; stdout?: string; stderr?: string };
    throw new Error(
      `mcp-inspector --cli ${method.join(' ')} (agent ${agent}) failed: exit code ${String(failed.code)}` +
        `${failed.signal ? `, signal ${failed.signal}` : ''}${failed.killed ? ' (killed after timeout)' : ''}\n` +
        `--- stderr ---\n${failed.stderr ?? ''}\n--- stdout ---\n${failed.stdout ?? ''}`,
    );
  }
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`mcp-inspector --cli ${method.join(' ')} printed no JSON.\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
  }
}

function toolsOf(listed: Record<string, unknown>): Tool[] {
  expect(Array.isArray(listed.tools), `tools/list result has no tools array: ${JSON.stringify(listed)}`).toBe(true);
  return listed.tools as Tool[];
}

describe('MCP Inspector CLI against the built server (simulator)', () => {
  it(
    'tools/list for billing-bot shows exactly its three tools, with schemas and annotations',
    async () => {
      const tools = toolsOf(await inspector('billing-bot', ['--method', 'tools/list']));
      expect(tools.map((tool) => tool.name).sort()).toEqual(['cancel_invoice_payment', 'create_invoice_payment', 'get_payment_status', 'list_logs']);
      for (const tool of tools) {
        expect(tool.inputSchema, `${tool.name} inputSchema`).toMatchObject({ type: 'object' });
        expect(tool.outputSchema, `${tool.name} outputSchema`).toMatchObject({ type: 'object' });
        expect(tool.annotations, `${tool.name} annotations`).toBeDefined();
      }
      const create = tools.find((tool) => tool.name === 'create_invoice_payment');
      expect(create?.inputSchema?.properties).toHaveProperty('invoice_id');
      expect(create?.inputSchema?.properties).toHaveProperty('amount');
      expect(create?.annotations).toMatchObject({
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: true,
      });
    },
    TIMEOUT,
  );

  it(
    'tools/call create_invoice_payment returns the pay link as structuredContent',
    async () => {
      // amount stays the string "120.00": the Inspector converts --tool-arg values by the tool's inputSchema type.
      const result = await inspector('billing-bot', [
        '--method', 'tools/call',
        '--tool-name', 'create_invoice_payment',
        '--tool-arg', 'invoice_id=INV-1',
        '--tool-arg', 'amount=120.00',
      ]);
      expect(result.isError, `tools/call reported an error: ${JSON.stringify(result)}`).not.toBe(true);
      const payment = result.structuredContent as Record<string, unknown>;
      expect(payment).toMatchObject({
        invoice_id: 'INV-1',
        kind: 'payment_link',
        status: 'open',
        amount: { value: '120.00', currency: 'EUR' },
        reused: false,
        replaced: [],
        payment_id: null,
      });
      expect(payment.payment_link_id).toMatch(/^pl_/);
      expect(payment.audit_id).toEqual(expect.any(String));
      expect(payment.audit_id).not.toBe('');
    },
    TIMEOUT,
  );

  it(
    'tools/list for auditor shows only the read tools',
    async () => {
      const tools = toolsOf(await inspector('auditor', ['--method', 'tools/list']));
      expect(tools.map((tool) => tool.name).sort()).toEqual(['get_payment_status', 'list_logs']);
    },
    TIMEOUT,
  );
});
