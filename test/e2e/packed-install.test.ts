/**
 * The package as a user installs it: `npm pack`, then `npm install --global` of that tarball into a temporary prefix,
 * then the installed command by name. A file missing from package.json's `files`, a bin that is not executable or a
 * dependency left in devDependencies fails here, not on a user's machine.
 */
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client } from '@modelcontextprotocol/client';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

let folder: string;
let bin: string;
let installed: string;
let packed: string[];
let env: Record<string, string>;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'mim-packed-'));
  // --ignore-scripts: `npm test` has just built dist/; packing must not rebuild it under the other test files.
  const pack = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', folder], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  const [report] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
  packed = report.files.map((file) => file.path);
  const prefix = join(folder, 'prefix');
  // JOBS=max: better-sqlite3 compiles from source on a machine without its prebuilt binary; use every core.
  await exec('npm', ['install', '--global', '--prefix', prefix, join(folder, report.filename), '--no-audit', '--no-fund'], {
    cwd: folder,
    env: { ...process.env, JOBS: 'max' },
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  bin = join(prefix, 'bin');
  installed = join(prefix, 'lib', 'node_modules', 'mollie-invoice-mcp');
  env = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: folder, LOG_LEVEL: 'info' };
}, 660_000);

afterAll(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe('the packed package, installed from its tarball', () => {
  it('ships the built code, the example policies and the docs a user reads, and none of the tests', () => {
    expect(packed).toEqual(expect.arrayContaining(['dist/src/cli.js', 'dist/src/cli.bundle.cjs', 'policies/billing-bot.yaml', 'README.md', 'mcp.json.example', 'package.json']));
    expect(packed.filter((path) => path.startsWith('test/') || path.startsWith('src/') || path.startsWith('dist/test/'))).toEqual([]);
  });

  it('runs `mollie-invoice-mcp demo` by name, offline, to the verified audit log', async () => {
    const { stdout } = await exec('mollie-invoice-mcp', ['demo'], { cwd: folder, env, timeout: 60_000 });
    expect(stdout).toMatch(/Verify the hash chain[\s\S]*intact/);
    expect((await exec('mollie-invoice-mcp', ['--version'], { env })).stdout.trim()).toBe(
      (JSON.parse((await exec('node', ['-p', 'JSON.stringify(require("./package.json"))'], { cwd: ROOT })).stdout) as { version: string }).version,
    );
  }, 90_000);

  it('serves `serve --simulator` over stdio with its own example policies, and its checkout page', async () => {
    const transport = new StdioClientTransport({
      command: join(bin, 'mollie-invoice-mcp'),
      args: ['serve', '--simulator'],
      env: { ...env, MOLLIE_MCP_AGENT: 'billing-bot', MOLLIE_MCP_POLICIES: join(installed, 'policies'), MOLLIE_MCP_CHECKOUT_PORT: '0' },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'packed-install', version: '1.0.0' });
    await client.connect(transport);
    try {
      expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('create_invoice_payment');
      const created = await client.callTool({ name: 'create_invoice_payment', arguments: { invoice_id: 'PACKED-1', amount: '9.99', currency: 'EUR' } });
      const url = String((created.structuredContent as { checkout_url: string }).checkout_url);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('PACKED-1');
    } finally {
      await client.close();
    }
  }, 60_000);

  it('prints client entries that point at the installed CLI', async () => {
    const { stdout } = await exec('mollie-invoice-mcp', ['client-config', '--client', 'cursor', '--simulator', '--policies', join(installed, 'policies')], { cwd: folder, env });
    const entry = Object.values((JSON.parse(stdout) as { mcpServers: Record<string, { args: string[] }> }).mcpServers)[0]!;
    expect(entry.args[0]).toBe(join(installed, 'dist', 'src', 'cli.js'));
    expect(readdirSync(join(installed, 'dist', 'src'))).toContain('cli.bundle.cjs.cache');
  }, 30_000);
});
