/** The commands an operator and an auditor run, through the built CLI: policy, token, audit, and serve's refusals. */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/policy/decide.js';
import { CLI, createWorkspace, EXAMPLE_POLICIES, spawnServer, type Workspace } from '../support/stdio-server.js';

const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

let workspace: Workspace;

beforeAll(() => {
  workspace = createWorkspace();
});
afterAll(() => workspace.remove());

describe('policy check', () => {
  it('prints agents x tools for the example policies', async () => {
    const run = await cli(['policy', 'check', '--policies', EXAMPLE_POLICIES]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^agent\s+create_invoice_payment\s+get_payment_status\s+refund\s+list_logs/m);
    expect(run.stdout).toMatch(/^billing-bot\s+EUR<=2500\.00\s+yes\s+-\s+scope own/m);
    // The refund cell says where a person must approve: refund-desk's confirm_above.
    expect(run.stdout).toMatch(/^refund-desk\s+-\s+yes\s+EUR<=100\.00 \(>50\.00: approval\)\s+scope own/m);
    expect(run.stdout).toMatch(/OK: 3 agents/);
  });

  it.each([
    ['an unknown key', 'agent: a\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "10.00" }\n    confirm_all: true\n', 'a.yaml:6', /unknown key "confirm_all"/],
    ['a malformed amount', 'agent: a\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "10,00" }\n', 'a.yaml:5', /per_call for EUR: .*comma/],
    ['an amount written as a YAML number', 'agent: a\ntools:\n  refund:\n    limits:\n      EUR:\n        per_call: 10.5\n', 'a.yaml:6', /Quote it in YAML/],
    ['too many decimals', 'agent: a\ntools:\n  refund:\n    limits:\n      JPY: { per_call: "100.50" }\n', 'a.yaml:5', /JPY has none/],
    ['an unknown tool', 'agent: a\ntools:\n  refnud: {}\n', 'a.yaml:3', /unknown tool "refnud"/],
    ['an unknown currency', 'agent: a\ntools:\n  refund:\n    limits:\n      EURO: { per_call: "10.00" }\n', 'a.yaml:5', /"EURO" is not a currency/],
    ['limits on a read-only tool', 'agent: a\ntools:\n  get_payment_status:\n    limits: {}\n', 'a.yaml:4', /moves no money/],
    ['confirm on a tool that cannot wait for a person', 'agent: a\ntools:\n  get_payment_status:\n    confirm: true\n', 'a.yaml:4', /get_payment_status cannot wait for a person's approval, so "confirm" does not apply to it \(it applies to: refund\)/],
    ['confirm_above on a tool that cannot wait for a person', 'agent: a\ntools:\n  create_invoice_payment:\n    limits:\n      EUR: { per_call: "10.00", confirm_above: "5.00" }\n', 'a.yaml:5', /"confirm_above" does not apply/],
    ['confirm_above that can never apply', 'agent: a\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "10.00", confirm_above: "10.00" }\n', 'a.yaml:5', /confirm_above 10.00 is not below per_call 10.00/],
    ['confirm_above next to confirm: true', 'agent: a\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "10.00", confirm_above: "5.00" }\n    confirm: true\n', 'a.yaml:5', /confirm: true already asks a person/],
    ['confirm that is not true or false', 'agent: a\ntools:\n  refund:\n    confirm: "yes"\n', 'a.yaml:4', /tools.refund.confirm must be boolean/],
    ['a malformed confirm_above', 'agent: a\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "10.00", confirm_above: "5,00" }\n', 'a.yaml:5', /confirm_above for EUR: .*comma/],
    ['broken YAML', 'agent: a\ntools: [\n', 'a.yaml:', /not valid YAML/],
  ])('stops on %s with the file, the line and the problem', async (_name, yaml, location, problem) => {
    const dir = createWorkspace({ a: yaml });
    try {
      const run = await cli(['policy', 'check', '--policies', dir.policies]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(location);
      expect(run.stderr).toMatch(problem);
      const served = await cli(['serve', '--simulator'], { MOLLIE_MCP_POLICIES: dir.policies, MOLLIE_MCP_DB: join(dir.dir, 'x.db') });
      expect(served.code).toBe(1);
      expect(served.stderr).toContain(location);
    } finally {
      dir.remove();
    }
  });

  it('refuses a duplicate agent, naming both files', async () => {
    const dir = createWorkspace({ one: 'agent: twin\ntools: {}\n', two: 'agent: twin\ntools: {}\n' });
    try {
      const run = await cli(['policy', 'check', '--policies', dir.policies]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/two\.yaml:1: agent "twin" is already defined in .*one\.yaml/);
    } finally {
      dir.remove();
    }
  });
});

describe('policy check: tokens', () => {
  it('refuses two agents with one token, since over HTTP the token alone names the agent', async () => {
    const shared = sha256Hex('one-token-for-two-agents');
    const dir = createWorkspace({ a: `agent: alpha\ntoken_sha256: ${shared}\ntools: {}\n`, b: `agent: beta\ntoken_sha256: ${shared}\ntools: {}\n` });
    try {
      const run = await cli(['policy', 'check', '--policies', dir.policies]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/b\.yaml:1: token_sha256 is the same as agent "alpha"'s in .*a\.yaml; give each agent its own token/);
    } finally {
      dir.remove();
    }
  });
});

describe('serve --transport http settings', () => {
  it('refuses a malformed port, origin list or idle timeout before starting', async () => {
    const env = { MOLLIE_MCP_POLICIES: EXAMPLE_POLICIES, MOLLIE_MCP_DB: join(workspace.dir, 'settings.db') };
    const port = await cli(['serve', '--transport', 'http', '--simulator', '--port', '70000'], env);
    expect(port).toMatchObject({ code: 1 });
    expect(port.stderr).toContain('--port must be a number from 0 to 65535');
    const origins = await cli(['serve', '--transport', 'http', '--simulator'], { ...env, MOLLIE_MCP_ALLOWED_ORIGINS: 'https://ok.example.com, https://bad.example.com/path' });
    expect(origins.stderr).toContain('"https://bad.example.com/path" is not one');
    const idle = await cli(['serve', '--transport', 'http', '--simulator'], { ...env, MOLLIE_MCP_SESSION_IDLE_SECONDS: '0' });
    expect(idle.stderr).toContain('MOLLIE_MCP_SESSION_IDLE_SECONDS must be a whole number of seconds from 1');
    const transport = await cli(['serve', '--transport', 'sse', '--simulator'], env);
    expect(transport.code).toBe(2);
    expect(transport.stderr).toContain('--transport must be stdio or http; got "sse"');
  });
});

describe('policy explain', () => {
  it('prints the decision and the rule behind it', async () => {
    const denied = await cli(['policy', 'explain', '--agent', 'refund-desk', '--tool', 'refund', '--amount', '150.00 EUR'], { MOLLIE_MCP_POLICIES: EXAMPLE_POLICIES });
    expect(denied.code).toBe(0);
    expect(denied.stdout).toMatch(/decision: denied/);
    expect(denied.stdout).toMatch(/reason:\s+per_call_exceeded/);
    expect(denied.stdout).toMatch(/rule:\s+.*refund-desk\.yaml: tools\.refund\.limits\.EUR\.per_call = 100\.00/);
    const allowed = await cli(['policy', 'explain', '--agent', 'refund-desk', '--tool', 'refund', '--amount', '50.00 EUR'], { MOLLIE_MCP_POLICIES: EXAMPLE_POLICIES });
    expect(allowed.stdout).toMatch(/decision: allowed[\s\S]*also at call time: per_day 250\.00 EUR over a rolling 24 hours; count_per_day 5/);
    const notListed = await cli(['policy', 'explain', '--agent', 'billing-bot', '--tool', 'refund'], { MOLLIE_MCP_POLICIES: EXAMPLE_POLICIES });
    expect(notListed.stdout).toMatch(/decision: denied\s+reason:\s+tool_not_allowed/);
  });
});

describe('token create', () => {
  it('prints a new token once and the token_sha256 line that matches it', async () => {
    const first = await cli(['token', 'create', '--agent', 'billing-bot']);
    const second = await cli(['token', 'create', '--agent', 'billing-bot']);
    const token = /^token: (mim_[A-Za-z0-9_-]{43})$/m.exec(first.stdout)?.[1];
    expect(token).toBeDefined();
    expect(first.stdout).toContain(`token_sha256: ${sha256Hex(token!)}`);
    expect(second.stdout).not.toContain(token!);
    expect(first.stderr).toMatch(/shown once/);
  });
});

describe('serve', () => {
  it('exits with what to set when there is no credential and no --simulator', async () => {
    const run = await cli(['serve'], { MOLLIE_MCP_POLICIES: EXAMPLE_POLICIES, MOLLIE_MCP_DB: join(workspace.dir, 'none.db') });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/No Mollie credential: set MOLLIE_API_KEY .* or run with --simulator/);
    // Nothing is left behind: no database marked for real Mollie that a later --simulator run would be refused.
    expect(existsSync(join(workspace.dir, 'none.db'))).toBe(false);
  });
});

describe('audit list, export and verify', () => {
  const env = (): Record<string, string> => ({ MOLLIE_MCP_DB: workspace.db });

  beforeAll(async () => {
    const server = await spawnServer({ agent: 'billing-bot', workspace: { ...workspace, policies: EXAMPLE_POLICIES }, env: { MOLLIE_MCP_TOKEN: 'tok_mustNotAppearAnywhere' } });
    await server.call('create_invoice_payment', { invoice_id: 'A-1', amount: '99.00', description: 'For jane.doe@example.com' });
    await server.call('create_invoice_payment', { invoice_id: 'A-2', amount: '9999.00' });
    await server.call('get_payment_status', { invoice_id: 'A-1' });
    await server.close();
  });

  it('lists calls as readable lines', async () => {
    const run = await cli(['audit', 'list'], env());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/billing-bot\s+create_invoice_payment\s+allowed\s+ok\s+99\.00 EUR/);
    expect(run.stdout).toMatch(/billing-bot\s+create_invoice_payment\s+denied\s+error\s+9999\.00 EUR.*per-call limit of 2500\.00 EUR/);
    const filtered = await cli(['audit', 'list', '--tool', 'get_payment_status', '--limit', '5'], env());
    expect(filtered.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('exports every row as JSON lines and CSV, with e-mails masked and no token', async () => {
    const jsonl = await cli(['audit', 'export', '--format', 'jsonl'], env());
    const rows = jsonl.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows).toHaveLength(6);
    expect(rows.map((row) => row.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(jsonl.stdout).toContain('j***@example.com');
    expect(jsonl.stdout).not.toContain('jane.doe@example.com');
    expect(jsonl.stdout).not.toContain('tok_mustNotAppearAnywhere');
    const out = join(workspace.dir, 'audit.csv');
    const csv = await cli(['audit', 'export', '--format', 'csv', '--out', out], env());
    expect(csv.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^seq,call_id,kind,at,agent/);
    expect(lines).toHaveLength(7);
    expect((await cli(['audit', 'export', '--format', 'xml'], env())).code).toBe(2);
  });

  it('verifies the chain, and names the first row changed behind the triggers\' back', async () => {
    const intact = await cli(['audit', 'verify'], env());
    expect(intact.code).toBe(0);
    expect(intact.stdout).toMatch(/Audit log intact: 6 rows/);

    const db = new Database(workspace.db);
    expect(() => db.prepare("UPDATE audit_log SET amount_value = '1.00' WHERE seq = 3").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 6').run()).toThrow(/append-only/);
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare("UPDATE audit_log SET amount_value = '1.00' WHERE seq = 3").run();
    db.close();

    const broken = await cli(['audit', 'verify'], env());
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/Audit log BROKEN at row 3 \(call [0-9a-f-]{36}\): its contents do not match its hash/);
  });

  it('says where the log should be when it is missing', async () => {
    const run = await cli(['audit', 'verify'], { MOLLIE_MCP_DB: join(workspace.dir, 'missing.db') });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/There is no audit log at .*missing\.db/);
  });
});
