/**
 * Four eyes and named approvers at the level of the gate: what counts as an approval when a people file is in force.
 * The attacks here are an agent's: a vote recorded under a people file of its own making (its own token for "alice"),
 * an OS user name, the same person twice, a person the policy does not name, and a yes in its own client.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Approvals, type Decider } from '../../src/approvals/approvals.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDatabase, type SqliteDatabase } from '../../src/database.js';
import { Gate, type CallOrigin } from '../../src/gate.js';
import { MollieSimulator } from '../../src/mollie/simulator.js';
import { checkApprovers } from '../../src/people/approver-check.js';
import { parsePeople, PeopleError, type PeopleSet } from '../../src/people/load-people.js';
import { PaymentRecords } from '../../src/payments/payment-records.js';
import { sha256Hex } from '../../src/policy/decide.js';
import { loadPolicies } from '../../src/policy/load-policies.js';
import type { PolicySet } from '../../src/policy/policy.js';
import { Reservations } from '../../src/policy/reservations.js';
import { TOOLS, TOOL_CAPABILITIES } from '../../tools/index.js';

const directory = mkdtempSync(join(tmpdir(), 'mim-people-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const TOKENS = { alice: 'mip_alice-token', bob: 'mip_bob-token', carol: 'mip_carol-token', dave: 'mip_dave-token' };
const PEOPLE_YAML = `people:
  - name: alice
    roles: [approver]
    token_sha256: ${sha256Hex(TOKENS.alice)}
  - name: bob
    roles: [approver, auditor]
    token_sha256: ${sha256Hex(TOKENS.bob)}
  - name: carol
    roles: [auditor]
    token_sha256: ${sha256Hex(TOKENS.carol)}
  - name: dave
    roles: [approver]
    token_sha256: ${sha256Hex(TOKENS.dave)}
`;

function person(name: keyof typeof TOKENS, people: PeopleSet, token = TOKENS[name]): Decider {
  const entry = people.people.get(name)!;
  return { name, via: 'console', authenticated: true, tokenSha256: sha256Hex(token), roles: entry.roles };
}

interface World {
  db: SqliteDatabase;
  gate: Gate;
  approvals: Approvals;
  simulator: MollieSimulator;
  people: PeopleSet;
  paymentId: string;
  setPeople(people: PeopleSet | null): void;
  setPolicies(yaml: string): void;
}

let counter = 0;
async function world(policy: string, withPeople = true): Promise<World> {
  counter += 1;
  const policyDir = join(directory, `p${counter}`);
  mkdirp(policyDir);
  writeFileSync(join(policyDir, 'desk.yaml'), policy);
  let policies: PolicySet = loadPolicies(policyDir, TOOL_CAPABILITIES);
  const db = openDatabase(join(directory, `w${counter}.db`));
  const audit = new AuditLog(db);
  const parsed = parsePeople('people.yaml', Buffer.from(PEOPLE_YAML));
  let people: PeopleSet | null = withPeople ? parsed : null;
  const approvals = new Approvals(db, audit, undefined, undefined, () => people);
  const simulator = new MollieSimulator();
  const payment = await simulator.createPayment({ amount: { value: '500.00', currency: 'EUR' }, description: 'Four eyes' }, { idempotencyKey: `k${counter}` });
  simulator.simulate(payment.id, 'paid');
  const gate = new Gate({
    db,
    audit,
    reservations: new Reservations(db),
    approvals,
    approvalSettings: { ttlMs: 60_000, confirmTimeoutMs: 1_000, askInClient: true },
    payments: new PaymentRecords(db),
    mollie: simulator,
    policies: () => policies,
    settings: { redirectUrl: null, webhookUrl: null, linkValidDays: 30 },
    tools: TOOLS,
    logger: pino({ level: 'silent' }),
    namedApprovers: () => people !== null,
  });
  return {
    db,
    gate,
    approvals,
    simulator,
    people: parsed,
    paymentId: payment.id,
    setPeople: (next) => {
      people = next;
    },
    setPolicies: (yaml) => {
      writeFileSync(join(policyDir, 'desk.yaml'), yaml);
      policies = loadPolicies(policyDir, TOOL_CAPABILITIES);
    },
  };
}

function mkdirp(path: string): void {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path);
}

const FOUR_EYES = `agent: desk
tools:
  refund:
    limits:
      EUR: { per_call: "500.00", confirm_above: "50.00" }
    approvers: [alice, bob, dave]
    approvals_needed: 2
`;

const origin: CallOrigin = { caller: { agent: 'desk', token: null }, transport: 'in-process', clientName: null };

async function ask(w: World, amount = '80.00'): Promise<string> {
  const reply = await w.gate.call(origin, 'refund', { payment_id: w.paymentId, amount });
  expect(reply.structuredContent.error).toMatchObject({ code: 'approval_required' });
  return (reply.structuredContent.error as { approval_id: string }).approval_id;
}

async function repeat(w: World, approvalId: string, amount = '80.00') {
  return w.gate.call(origin, 'refund', { payment_id: w.paymentId, amount, approval_id: approvalId });
}

describe('four eyes under a people file', () => {
  let w: World;
  beforeEach(async () => {
    w = await world(FOUR_EYES);
  });

  it('needs two different approvers; the same person twice does not count twice', async () => {
    const id = await ask(w);
    expect(w.approvals.decide(id, 'approved', person('alice', w.people))).toMatchObject({ ok: true, approval: { state: 'pending' } });
    const twice = w.approvals.decide(id, 'approved', person('alice', w.people));
    expect(twice).toMatchObject({ ok: false });
    expect(twice.ok ? '' : twice.message).toContain('alice already approved');
    expect((await repeat(w, id)).structuredContent.error).toMatchObject({ code: 'approval_required', reason: 'approval_pending' });
    expect(w.approvals.decide(id, 'approved', person('bob', w.people))).toMatchObject({ ok: true, approval: { state: 'approved' } });
    const done = await repeat(w, id);
    expect(done.isError).toBe(false);
    expect(await w.simulator.listRefunds(w.paymentId)).toHaveLength(1);
    // Spent: it says so, whatever the repeat asks for, rather than "repeat the approved call with the same arguments".
    const again = await w.gate.call(origin, 'refund', { payment_id: w.paymentId, amount: '80.00', approval_id: id, allow_repeat: true });
    expect(again.structuredContent.error).toMatchObject({ code: 'policy_denied', reason: 'approval_used' });
  });

  it('a vote recorded under a people file of the agent\'s own making does not count', async () => {
    const id = await ask(w);
    // The agent wrote its own people file naming "alice" with its own token and ran `approve --as alice` with it.
    const forged = (name: 'alice' | 'bob'): Decider => ({ name, via: 'cli', authenticated: true, tokenSha256: sha256Hex(`agent-made-${name}`), roles: ['approver'] });
    for (const name of ['alice', 'bob'] as const) {
      const decided = w.approvals.decide(id, 'approved', forged(name));
      expect(decided).toMatchObject({ ok: false });
      expect(decided.ok ? '' : decided.message).toContain(`${name} did not sign in with the personal token the people file people.yaml lists`);
    }
    expect(w.approvals.get(id)!.state).toBe('pending');
    const refused = await repeat(w, id);
    expect(refused.structuredContent.error).toMatchObject({ code: 'approval_required', reason: 'approval_pending' });
    expect((refused.structuredContent.error as { message: string }).message).toContain('Nobody has approved it yet');
    expect(await w.simulator.listRefunds(w.paymentId)).toEqual([]);
  });

  it('votes put into the tables by hand, with no event in the hash chain, do not count; nor do they block the real person', async () => {
    const id = await ask(w);
    // Someone with write access to the file, who read the token hashes from the people file.
    const forge = w.db.prepare("INSERT INTO approval_votes (approval_id, person, decision, via, authenticated, token_sha256, note, at) VALUES (?, ?, 'approved', 'console', 1, ?, NULL, '2026-12-02T00:00:00.000Z')");
    forge.run(id, 'alice', sha256Hex(TOKENS.alice));
    forge.run(id, 'bob', sha256Hex(TOKENS.bob));
    w.db.prepare("UPDATE approvals SET state = 'approved', decided_by = 'alice, bob' WHERE approval_id = ?").run(id);
    const refused = await repeat(w, id);
    expect(refused.structuredContent.error).toMatchObject({ code: 'approval_required', reason: 'approval_pending' });
    expect(await w.simulator.listRefunds(w.paymentId)).toEqual([]);
    // The real alice and bob approve over the forged rows, and then it counts.
    expect(w.approvals.decide(id, 'approved', person('alice', w.people))).toMatchObject({ ok: true });
    expect(w.approvals.decide(id, 'approved', person('bob', w.people))).toMatchObject({ ok: true, approval: { state: 'approved' } });
    expect((await repeat(w, id)).isError).toBe(false);
  });

  it('OS user names do not count while a people file is in force', async () => {
    const id = await ask(w);
    w.approvals.decide(id, 'approved', { name: 'alice', via: 'cli', authenticated: false, tokenSha256: null, roles: null });
    w.approvals.decide(id, 'approved', { name: 'bob', via: 'cli', authenticated: false, tokenSha256: null, roles: null });
    expect((await repeat(w, id)).structuredContent.error).toMatchObject({ code: 'approval_required' });
    expect(await w.simulator.listRefunds(w.paymentId)).toEqual([]);
  });

  it('an auditor and an approver the policy does not name cannot decide; one approver\'s no rejects it', async () => {
    w.setPolicies(FOUR_EYES.replace('[alice, bob, dave]', '[alice, bob]'));
    const id = await ask(w);
    expect(w.approvals.decide(id, 'approved', person('carol', w.people))).toMatchObject({ ok: false, message: expect.stringContaining('carol is not an approver') });
    expect(w.approvals.decide(id, 'approved', person('dave', w.people))).toMatchObject({ ok: false, message: expect.stringContaining('Only alice and bob may decide') });
    expect(w.approvals.decide(id, 'rejected', person('bob', w.people))).toMatchObject({ ok: true, approval: { state: 'rejected' } });
    expect(w.approvals.decide(id, 'approved', person('alice', w.people))).toMatchObject({ ok: false });
    expect((await repeat(w, id)).structuredContent.error).toMatchObject({ reason: 'approval_rejected' });
  });

  it('a person removed from the people file, or given a new token, no longer counts', async () => {
    const id = await ask(w);
    w.approvals.decide(id, 'approved', person('alice', w.people));
    w.approvals.decide(id, 'approved', person('bob', w.people));
    const rotated = parsePeople('people.yaml', Buffer.from(PEOPLE_YAML.replace(sha256Hex(TOKENS.bob), sha256Hex('mip_bob-new'))));
    w.setPeople(rotated);
    expect((await repeat(w, id)).structuredContent.error).toMatchObject({ code: 'approval_required', reason: 'approval_pending' });
    w.setPeople(w.people);
    expect((await repeat(w, id)).isError).toBe(false);
  });

  it('a policy that raises approvals_needed after the approval applies to the call', async () => {
    const id = await ask(w);
    w.approvals.decide(id, 'approved', person('alice', w.people));
    w.approvals.decide(id, 'approved', person('bob', w.people));
    w.setPolicies(FOUR_EYES.replace('approvals_needed: 2', 'approvals_needed: 3'));
    const refused = await repeat(w, id);
    expect((refused.structuredContent.error as { message: string }).message).toContain('has 2 of the 3 approvals');
    w.approvals.decide(id, 'approved', person('dave', w.people));
    expect((await repeat(w, id)).isError).toBe(false);
  });

  it('a yes in the agent\'s own client never counts: the approval goes out of band', async () => {
    let asked = 0;
    const reply = await w.gate.call({ ...origin, transport: 'stdio', confirm: { kind: 'prompt', ask: async () => { asked += 1; return 'accepted'; } } }, 'refund', { payment_id: w.paymentId, amount: '80.00' });
    expect(asked).toBe(0);
    expect(reply.structuredContent.error).toMatchObject({ code: 'approval_required' });
    expect(await w.simulator.listRefunds(w.paymentId)).toEqual([]);
  });
});

describe('without a people file', () => {
  it('one OS user name approves, as before 0.6', async () => {
    const w = await world('agent: desk\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "500.00", confirm_above: "50.00" }\n', false);
    const id = await ask(w);
    expect(w.approvals.decide(id, 'approved', 'root')).toMatchObject({ ok: true, approval: { state: 'approved' } });
    expect((await repeat(w, id)).isError).toBe(false);
  });
});

describe('the people file and the policies together', () => {
  it('names every mistake with its file and line', () => {
    expect(() => parsePeople('people.yaml', Buffer.from('people:\n  - name: alice\n    roles: [approver]\n    token_sha256: abc\n    team: x\n'))).toThrow(PeopleError);
    try {
      parsePeople('people.yaml', Buffer.from(`people:\n  - name: alice\n    roles: [approver]\n    token_sha256: ${sha256Hex('a')}\n  - name: alice\n    roles: [auditor]\n    token_sha256: ${sha256Hex('a')}\n`));
    } catch (error) {
      expect((error as Error).message).toContain('people.yaml:5: "alice" is named twice');
      expect((error as Error).message).toContain('people.yaml:7: token_sha256 is the same as "alice"');
    }
    const dir = join(directory, 'check');
    mkdirp(dir);
    writeFileSync(join(dir, 'desk.yaml'), FOUR_EYES.replace('[alice, bob, dave]', '[alice, carol]'));
    const policies = loadPolicies(dir, TOOL_CAPABILITIES);
    const people = parsePeople('people.yaml', Buffer.from(PEOPLE_YAML));
    expect(checkApprovers(policies, people).map((problem) => `${problem.file.split('/').pop()}:${problem.line}: ${problem.message}`)).toEqual([
      'desk.yaml:6: tools.refund.approvers names "carol", who is not an approver in the people file people.yaml; add them there with the approver role, or remove the name.',
    ]);
    expect(checkApprovers(policies, null)[0]!.message).toContain('need a people file: set MOLLIE_MCP_PEOPLE');
    // A person whose token is an agent's: whoever holds the agent's token would be that person too.
    writeFileSync(join(dir, 'desk.yaml'), `agent: desk\ntoken_sha256: ${sha256Hex(TOKENS.dave)}\ntools:\n  get_payment_status: {}\n`);
    const shared = checkApprovers(loadPolicies(dir, TOOL_CAPABILITIES), people);
    expect(shared.map((problem) => `${problem.file}:${problem.line}: ${problem.message}`)).toEqual([
      `people.yaml:13: dave's token_sha256 is agent "desk"'s (${join(dir, 'desk.yaml').replace(process.cwd() + '/', '')}); give dave a personal token of their own (\`mollie-invoice-mcp token create --person dave\`).`,
    ]);
  });
});
