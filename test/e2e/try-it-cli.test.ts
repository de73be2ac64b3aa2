/**
 * The commands a new user runs while trying the server in a client: --help and --version, client-config (whose
 * printed entry must start a server that answers), simulate, and the approval command an agent's message names,
 * run exactly as printed.
 */
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFile } from '../../src/commands/client-config.js';
import { produced, secret } from '../support/leak-watch.js';
import { newToken, spawnHttpServer } from '../support/http-server.js';
import { CLI, createWorkspace, EXAMPLE_POLICIES, spawnServer, workspaceEnv, type ServerHandle, type Workspace } from '../support/stdio-server.js';

const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], env: Record<string, string>, cwd?: string): Promise<Run> {
  try {
    const { stdout, stderr } = await exec(file, args, { env, timeout: 30_000, ...(cwd ? { cwd } : {}) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** A command with nothing on its stdin (a stdio server whose client has gone at once). */
function runClosed(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const HTTP_AGENT = newToken();
let workspace: Workspace;
let env: Record<string, string>;
const cli = (args: string[], extra: Record<string, string> = {}) => run(process.execPath, [CLI, ...args], { ...env, ...extra });

beforeAll(() => {
  workspace = createWorkspace({
    'billing-bot': readFileSync(join(EXAMPLE_POLICIES, 'billing-bot.yaml'), 'utf8'),
    'refund-desk': readFileSync(join(EXAMPLE_POLICIES, 'refund-desk.yaml'), 'utf8'),
    'http-bot': `agent: http-bot\ntoken_sha256: ${HTTP_AGENT.sha256}\ntools:\n  get_payment_status: {}\n  list_logs: { scope: own }\n`,
  });
  env = workspaceEnv(workspace);
});
afterAll(() => workspace.remove());

describe('--help and --version', () => {
  const commands = [
    ['serve'], ['demo'], ['client-config'], ['simulate'], ['policy'], ['policy', 'check'], ['policy', 'explain'], ['audit'], ['audit', 'list'],
    ['audit', 'export'], ['audit', 'verify'], ['keys'], ['keys', 'create'], ['token'], ['token', 'create'], ['approvals'], ['approve'], ['reject'],
  ];
  it.each(commands.map((words) => [words.join(' '), words]))('%s --help prints its own usage and exits 0', async (_name, words) => {
    const answer = await cli([...(words as string[]), '--help']);
    expect(answer.code).toBe(0);
    expect(answer.stdout).toMatch(new RegExp(`^Usage: mollie-invoice-mcp ${(words as string[]).join(' ')}\\b`));
  });

  it('answers --version with the package version', async () => {
    const answer = await cli(['--version']);
    expect(answer.code).toBe(0);
    expect(answer.stdout.trim()).toBe(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  });

  it('token create names the policies folder in use', async () => {
    const answer = await cli(['token', 'create', '--agent', 'new-bot']);
    expect(answer.code).toBe(0);
    expect(answer.stderr).toContain(join(workspace.policies, 'new-bot.yaml'));
  });
});

describe('client-config', () => {
  const clients = ['claude-desktop', 'cursor', 'vscode', 'claude-code'] as const;

  it.each(clients)('prints a %s entry that starts a server answering tools/list', async (client) => {
    const answer = await cli(['client-config', '--client', client, '--agent', 'refund-desk', '--simulator']);
    expect(answer.code).toBe(0);
    const config = JSON.parse(answer.stdout) as Record<string, Record<string, { type?: string; command: string; args: string[]; env: Record<string, string> }>>;
    const key = client === 'vscode' ? 'servers' : 'mcpServers';
    expect(Object.keys(config)).toEqual([key]);
    const [name, entry] = Object.entries(config[key]!)[0]!;
    expect(name).toBe('mollie-refund-desk-simulator');
    if (client === 'vscode' || client === 'claude-code') expect(entry.type).toBe('stdio');
    expect(entry.command).toBe(process.execPath);
    expect(entry.args).toEqual([CLI, 'serve', '--simulator']);
    expect(entry.env).toMatchObject({ MOLLIE_MCP_AGENT: 'refund-desk', MOLLIE_MCP_POLICIES: workspace.policies, MOLLIE_MCP_DB: workspace.db });
    expect(answer.stderr).toMatch(client === 'claude-desktop' ? /claude_desktop_config\.json/ : client === 'cursor' ? /\.cursor\/mcp\.json/ : client === 'vscode' ? /\.vscode\/mcp\.json/ : /\.mcp\.json/);

    // Started exactly as the client would: that command, those arguments, that environment and nothing else.
    const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: { ...entry.env, MOLLIE_MCP_CHECKOUT_PORT: '0' }, stderr: 'pipe' });
    const mcp = new Client({ name: client, version: '1.0.0' });
    await mcp.connect(transport);
    try {
      const { tools } = await mcp.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(['get_payment_status', 'list_logs', 'refund']);
    } finally {
      await mcp.close();
    }
  }, 30_000);

  it.each(['cursor', 'vscode', 'claude-code'] as const)('prints a %s HTTP entry whose URL and bearer header reach the server', async (client) => {
    const server = await spawnHttpServer({ workspace });
    try {
      const answer = await cli(['client-config', '--client', client, '--agent', 'http-bot', '--url', `${server.url}/mcp`]);
      expect(answer.code).toBe(0);
      const config = JSON.parse(answer.stdout) as Record<string, Record<string, { type?: string; url: string; headers: Record<string, string> }>>;
      const entry = Object.values(config[client === 'vscode' ? 'servers' : 'mcpServers']!)[0]!;
      if (client !== 'cursor') expect(entry.type).toBe('http');
      // The token is never printed: the entry refers to the client's own secret store or environment.
      // Each agent's token has its own name, so two entries never share one.
      const reference = { cursor: '${env:MOLLIE_MCP_TOKEN_HTTP_BOT}', vscode: '${input:mollie-mcp-token-http-bot}', 'claude-code': '${MOLLIE_MCP_TOKEN_HTTP_BOT}' }[client];
      expect(entry.headers.Authorization).toBe(`Bearer ${reference}`);
      if (client === 'vscode') expect(config.inputs).toEqual([expect.objectContaining({ id: 'mollie-mcp-token-http-bot', password: true })]);
      // The client fills the reference in; then the entry connects.
      const headers = { Authorization: entry.headers.Authorization!.replace(reference, HTTP_AGENT.token) };
      const mcp = new Client({ name: client, version: '1.0.0' });
      await mcp.connect(new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers } }));
      try {
        expect((await mcp.listTools()).tools.map((tool) => tool.name).sort()).toEqual(['get_payment_status', 'list_logs']);
      } finally {
        await mcp.close();
      }
    } finally {
      await server.stop();
    }
  }, 30_000);

  it('prints the entries of several agents to paste together, each starting its own server', async () => {
    const answer = await cli(['client-config', '--client', 'claude-desktop', '--simulator', '--agent', 'billing-bot,refund-desk']);
    expect(answer.code).toBe(0);
    const servers = (JSON.parse(answer.stdout) as { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> }).mcpServers;
    expect(Object.keys(servers)).toEqual(['mollie-billing-bot-simulator', 'mollie-refund-desk-simulator']);
    for (const [name, entry] of Object.entries(servers)) {
      const mcp = new Client({ name, version: '1.0.0' });
      await mcp.connect(new StdioClientTransport({ command: entry.command, args: entry.args, env: { ...entry.env, MOLLIE_MCP_CHECKOUT_PORT: '0' }, stderr: 'pipe' }));
      try {
        expect((await mcp.listTools()).tools.map((tool) => tool.name)).toContain(name.startsWith('mollie-billing') ? 'create_invoice_payment' : 'refund');
      } finally {
        await mcp.close();
      }
    }
  }, 30_000);

  it('prints Claude Desktop\'s HTTP form through mcp-remote, with a placeholder for the token', async () => {
    const answer = await cli(['client-config', '--client', 'claude-desktop', '--agent', 'http-bot', '--url', 'http://127.0.0.1:3333/mcp']);
    expect(answer.code).toBe(0);
    const entry = Object.values((JSON.parse(answer.stdout) as { mcpServers: Record<string, { args: string[]; env: Record<string, string> }> }).mcpServers)[0]!;
    expect(entry.args).toEqual(['-y', 'mcp-remote', 'http://127.0.0.1:3333/mcp', '--header', 'Authorization:${MOLLIE_MCP_AUTHORIZATION}']);
    expect(entry.env.MOLLIE_MCP_AUTHORIZATION).toMatch(/^Bearer mim_\.\.\. /);
  });

  it('refuses an unknown client, an agent without a policy and a URL that is not one, saying what is allowed', async () => {
    const client = await cli(['client-config', '--client', 'emacs']);
    expect(client.code).toBe(2);
    expect(client.stderr).toContain('--client claude-desktop|cursor|vscode|claude-code; got "emacs"');
    const agent = await cli(['client-config', '--client', 'cursor', '--agent', 'nobody']);
    expect(agent.code).toBe(2);
    expect(agent.stderr).toMatch(/no policy for agent "nobody" in .*; the agents there are: billing-bot, http-bot, refund-desk/);
    const url = await cli(['client-config', '--client', 'cursor', '--url', 'ftp://x']);
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('--url must be');
  });

  it('is what mcp.json.example holds, so the two cannot drift (npm run mcp-example rewrites it)', () => {
    expect(readFileSync(new URL('../../mcp.json.example', import.meta.url), 'utf8')).toBe(exampleFile());
  });
});

describe('simulate', () => {
  let billing: ServerHandle;
  beforeAll(async () => {
    billing = await spawnServer({ agent: 'billing-bot', workspace });
  }, 30_000);
  afterAll(async () => billing?.close());

  const newLink = async (invoice: string) =>
    String((await billing.call('create_invoice_payment', { invoice_id: invoice, amount: '12.00', currency: 'EUR' })).structuredContent.payment_link_id);
  const newCheckout = async (invoice: string) =>
    String((await billing.call('create_invoice_payment', { invoice_id: invoice, amount: '12.00', currency: 'EUR', kind: 'checkout' })).structuredContent.payment_id);
  const status = async (args: Record<string, string>) => (await billing.call('get_payment_status', args)).structuredContent;

  it.each([
    ['pay', 'paid'],
    ['fail', 'failed'],
    ['cancel', 'canceled'],
  ])('%s on a payment link makes a payment through it that is %s, and the server reads it', async (action, outcome) => {
    const linkId = await newLink(`SIM-L-${action}`);
    const answer = await cli(['simulate', action, linkId]);
    expect(answer.code).toBe(0);
    expect(answer.stderr).toContain(`Database: ${workspace.db}`);
    expect(answer.stdout).toMatch(new RegExp(`^tr_\\w+ through ${linkId}: 12\\.00 EUR, now ${outcome}\\.`));
    const read = await status({ payment_link_id: linkId });
    expect(read).toMatchObject({ payment_id: expect.stringMatching(/^tr_/) });
    expect((read.payments as { status: string }[]).length).toBeGreaterThan(0);
    if (outcome === 'paid') expect(read.status).toBe('paid');
    else expect(read.status).toBe('open'); // a failed or canceled attempt leaves the link payable, as at Mollie
  }, 30_000);

  it('expire on a payment link ends it', async () => {
    const linkId = await newLink('SIM-L-expire');
    const answer = await cli(['simulate', 'expire', linkId]);
    expect(answer.code).toBe(0);
    expect(answer.stdout).toContain(`${linkId} has expired`);
    expect((await status({ payment_link_id: linkId })).status).toBe('expired');
  }, 30_000);

  it.each([
    ['pay', 'paid'],
    ['fail', 'failed'],
    ['cancel', 'canceled'],
    ['expire', 'expired'],
  ])('%s on a checkout makes it %s', async (action, outcome) => {
    const paymentId = await newCheckout(`SIM-C-${action}`);
    const answer = await cli(['simulate', action, paymentId]);
    expect(answer.code).toBe(0);
    expect(answer.stdout).toContain(`${paymentId}: 12.00 EUR, now ${outcome}.`);
    expect((await status({ payment_id: paymentId })).status).toBe(outcome);
    // Recorded as Mollie's webhook would be: an audit call of the webhook actor about this payment.
    const logs = await cli(['audit', 'list', '--agent', 'mollie-webhook', '--limit', '100']);
    expect(logs.stdout).toContain(paymentId);
  }, 30_000);

  it('refuses what the customer cannot do, an unknown id, and a database without a simulator, saying why', async () => {
    const paymentId = await newCheckout('SIM-C-twice');
    expect((await cli(['simulate', 'pay', paymentId])).code).toBe(0);
    const twice = await cli(['simulate', 'fail', paymentId]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain(`${paymentId} is paid: only an open payment can become failed.`);
    const unknown = await cli(['simulate', 'pay', 'tr_doesNotExist1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`The simulator has no payment tr_doesNotExist1 in ${workspace.db}`);
    const action = await cli(['simulate', 'refund', paymentId]);
    expect(action.code).toBe(2);
    expect(action.stderr).toContain('pay, fail, cancel or expire; got "refund"');
    const elsewhere = await cli(['simulate', 'pay', paymentId, '--db', join(workspace.dir, 'none.db')]);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('There is no simulator database at');
  }, 30_000);
});

describe('the approval an agent asks for', () => {
  async function askForApproval(server: ServerHandle, amount: string): Promise<{ command: string; approvalId: string; paymentId: string }> {
    const link = (await server.call('get_payment_status', { payment_link_id: String(paidLink) })).structuredContent;
    const paymentId = String(link.payment_id);
    const refund = await server.call('refund', { payment_id: paymentId, amount });
    expect(refund.isError).toBe(true);
    const error = refund.structuredContent.error as { code: string; message: string; approval_id: string };
    expect(error.code).toBe('approval_required');
    const command = /ask them to run `([^`]+)`/.exec(error.message)![1]!;
    return { command, approvalId: error.approval_id, paymentId };
  }

  let paidLink: string;
  let refunds: ServerHandle;
  beforeAll(async () => {
    const billing = await spawnServer({ agent: 'billing-bot', workspace });
    paidLink = String((await billing.call('create_invoice_payment', { invoice_id: 'APPROVE-1', amount: '200.00', currency: 'EUR' })).structuredContent.payment_link_id);
    await billing.close();
    expect((await cli(['simulate', 'pay', paidLink])).code).toBe(0);
  }, 30_000);
  afterAll(async () => refunds?.close());

  it('names a command that approves when run as printed, from another folder, with the server\'s --db', async () => {
    // As from Claude Desktop: the command is not on the PATH, so node and the CLI are named by absolute path.
    refunds = await spawnServer({ agent: 'refund-desk', workspace });
    const { command, approvalId, paymentId } = await askForApproval(refunds, '60.00');
    expect(command).toBe(`${process.execPath} ${CLI} approve ${approvalId} --db ${workspace.db}`);
    // In a shell, somewhere else, without the server's environment: only PATH and HOME.
    const approved = await run('/bin/sh', ['-c', command], { PATH: process.env.PATH ?? '', HOME: workspace.dir }, workspace.dir);
    produced('approve command output', approved.stdout + approved.stderr);
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain(`Approved by `);
    expect(approved.stderr).toContain(`Database: ${workspace.db}`);
    const repeat = await refunds.call('refund', { payment_id: paymentId, amount: '60.00', approval_id: approvalId });
    expect(repeat.isError).toBe(false);
  }, 30_000);

  it('names the command by name when `mollie-invoice-mcp` on the PATH is this CLI, and that works too', async () => {
    const bin = join(workspace.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(CLI, join(bin, 'mollie-invoice-mcp'));
    const path = `${bin}:${process.env.PATH ?? ''}`;
    const server = await spawnServer({ agent: 'refund-desk', workspace, env: { PATH: path } });
    try {
      const { command } = await askForApproval(server, '70.00');
      expect(command).toMatch(new RegExp(`^mollie-invoice-mcp approve ap_\\w+ --db ${workspace.db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
      const approved = await run('/bin/sh', ['-c', command], { PATH: path, HOME: workspace.dir }, workspace.dir);
      expect(approved.code).toBe(0);
      expect(approved.stdout).toContain('Approved by ');
    } finally {
      await server.close();
    }
  }, 30_000);

  it('approvals says which database it read, also when nothing waits there', async () => {
    const listed = await cli(['approvals', '--db', workspace.db], { MOLLIE_MCP_DB: '' });
    expect(listed.code).toBe(0);
    expect(listed.stderr).toContain(`Database: ${workspace.db}`);
    expect(listed.stdout).toContain(`No approvals are waiting in ${workspace.db}.`);
  });
});

// The secrets in this file's workspace are the agents' tokens; mark the HTTP one as one for the leak scan.
secret(HTTP_AGENT.token);

describe('a person who has only tried the simulator', () => {
  it('reads the simulator\'s default database with `audit list` and `approvals`, and says so', async () => {
    const home = join(workspace.dir, 'fresh-home');
    mkdirSync(home);
    const fresh = { PATH: process.env.PATH ?? '', HOME: home, XDG_STATE_HOME: join(home, 'state'), MOLLIE_MCP_POLICIES: workspace.policies, MOLLIE_MCP_CHECKOUT_PORT: '0' };
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'serve', '--simulator'], env: { ...fresh, MOLLIE_MCP_AGENT: 'billing-bot' }, stderr: 'pipe' });
    const mcp = new Client({ name: 'fresh', version: '1.0.0' });
    await mcp.connect(transport);
    await mcp.callTool({ name: 'create_invoice_payment', arguments: { invoice_id: 'FRESH-1', amount: '3.00', currency: 'EUR' } });
    await mcp.close();
    const simulatorDb = join(home, 'state', 'mollie-invoice-mcp', 'mollie-invoice-mcp-simulator.db');
    const listed = await run(process.execPath, [CLI, 'audit', 'list'], fresh);
    expect(listed.code).toBe(0);
    expect(listed.stderr).toContain(`Database: ${simulatorDb}`);
    expect(listed.stdout).toContain('create_invoice_payment');
    const approvals = await run(process.execPath, [CLI, 'approvals'], fresh);
    expect(approvals.stdout).toContain(`No approvals are waiting in ${simulatorDb}.`);
    // verify never guesses which log it vouches for, but says where the only one is, and that works as printed.
    const verify = await run(process.execPath, [CLI, 'audit', 'verify'], fresh);
    expect(verify.code).toBe(2);
    expect(verify.stderr).toContain(`Only the simulator's database exists: add --db ${simulatorDb} to read that one.`);
    expect(verify.stderr).not.toContain('Usage:');
    const named = await run(process.execPath, [CLI, 'audit', 'verify', '--db', simulatorDb], fresh);
    expect(named.code).toBe(0);
    expect(named.stdout).toContain('Audit log intact');
  }, 30_000);
});

describe('keeping simulated and real records apart', () => {
  it('refuses the simulator on a real account\'s database and real Mollie on a simulator\'s, saying what to do', async () => {
    const real = join(workspace.dir, 'real.db');
    // A server for real Mollie opens the file (and marks it); its client goes away at once.
    const started = await runClosed(['serve'], { ...env, MOLLIE_MCP_DB: real, MOLLIE_API_KEY: secret('test_kindCheckKeyMustNeverLeak0123456'), MOLLIE_MCP_AGENT: 'billing-bot' });
    expect(started.code).toBe(0);
    const simulator = await runClosed(['serve', '--simulator'], { ...env, MOLLIE_MCP_DB: real });
    expect(simulator.code).toBe(1);
    expect(simulator.stderr).toContain(`${real} holds the records of a real Mollie account; the simulator does not write into it`);
    expect(simulator.stderr).not.toContain('unexpected error');
    const entry = await cli(['client-config', '--client', 'cursor', '--simulator'], { MOLLIE_MCP_DB: real });
    expect(entry.code).toBe(2);
    expect(entry.stderr).toContain('Give the simulator its own database');
    const played = await cli(['simulate', 'pay', 'tr_anything123', '--db', real]);
    expect(played.code).toBe(2);

    const back = await runClosed(['serve'], { ...env, MOLLIE_API_KEY: secret('test_kindCheckKeyMustNeverLeak0123456'), MOLLIE_MCP_AGENT: 'billing-bot' });
    expect(back.code).toBe(1);
    expect(back.stderr).toContain(`${workspace.db} is a simulator database`);
  }, 30_000);
});

describe('the customer in two places at once', () => {
  it('pays a link once when twelve `simulate pay` race, and tells the others why not', async () => {
    const billing = await spawnServer({ agent: 'billing-bot', workspace });
    const linkId = String((await billing.call('create_invoice_payment', { invoice_id: 'RACE-1', amount: '8.00', currency: 'EUR' })).structuredContent.payment_link_id);
    await billing.close();
    const runs = await Promise.all(Array.from({ length: 12 }, () => cli(['simulate', 'pay', linkId])));
    expect(runs.filter((one) => one.code === 0)).toHaveLength(1);
    for (const refused of runs.filter((one) => one.code !== 0)) {
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`${linkId}: (This payment link has already been paid|A payment through this link is already being processed)\\.`));
      expect(refused.stderr).not.toContain('unexpected error');
    }
  }, 60_000);
});

describe('help is an option, not a value', () => {
  it('reports `--db --help` and `--agent -h` as the mistakes they are, doing nothing', async () => {
    const verify = await cli(['audit', 'verify', '--db', '--help']);
    expect(verify.code).toBe(2);
    const token = await cli(['token', 'create', '--agent', '-h']);
    expect(token.code).toBe(2);
    expect(token.stdout).not.toContain('token:');
    expect((await cli(['client-config', '--simulator', '--help'])).code).toBe(0);
  });
});
