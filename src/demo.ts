/**
 * `mollie-invoice-mcp demo`: an offline walk-through on the simulator, printed for a person to read. The agents
 * speak real MCP to the real gate (in-memory transport), under the example policies in policies/, with a fresh
 * audit log in a temporary directory; the simulated customer pays in between.
 */
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { listCalls } from './audit/call-entries.js';
import { formatCallTable } from './audit/call-table.js';
import type { CommandOutput } from './commands/output.js';
import { readConfig } from './config.js';
import { openEngine, type Engine } from './engine.js';
import { packagePath } from './package-root.js';
import { MollieSimulator } from './mollie/simulator.js';
import { createMcpServer } from './server.js';

/** The example policies shipped beside the code: dist/src/demo.js and src/demo.ts both sit two levels below. */
export const EXAMPLE_POLICIES = packagePath('policies');

interface ToolReply {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
}

async function connect(engine: Engine, agent: string): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const server = createMcpServer({ gate: engine.gate, caller: () => ({ agent, token: null }), transport: 'in-process' });
  await server.connect(serverSide);
  const client = new Client({ name: 'demo-agent', version: '1.0.0' });
  await client.connect(clientSide);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolReply> {
  return (await client.callTool({ name, arguments: args })) as ToolReply;
}

function field(reply: ToolReply, key: string): string {
  const value = reply.structuredContent?.[key];
  if (value && typeof value === 'object' && 'value' in value && 'currency' in value) return `${String(value.value)} ${String(value.currency)}`;
  return String(value);
}

function failure(reply: ToolReply): string {
  const error = reply.structuredContent?.error as { code?: string; reason?: string; message?: string } | undefined;
  return `${error?.code ?? 'error'}${error?.reason ? ` (${error.reason})` : ''}: ${error?.message ?? ''}`;
}

export async function runDemo(io: CommandOutput): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'mollie-invoice-mcp-demo-'));
  // The simulated Mollie has a clock of its own, so the customer can pay "days later" within a second.
  let mollieTime = Date.now();
  const simulator = new MollieSimulator({ now: () => new Date(mollieTime) });
  const config = readConfig({ MOLLIE_MCP_POLICIES: EXAMPLE_POLICIES, MOLLIE_MCP_DB: join(directory, 'demo.db') });
  const engine = openEngine(config, { logger: pino({ level: 'silent' }), env: {}, mollie: simulator });
  const out = (line = ''): void => io.out(line);
  const step = (n: number, title: string): void => out(`\n${n}. ${title}`);
  const say = (line: string): void => out(`   ${line}`);
  const clients: Client[] = [];
  try {
    out('mollie-invoice-mcp demo: offline, on the built-in Mollie simulator (no account, no network).');
    out(`Agents and their policies: ${[...engine.policies.agents.keys()].join(', ')} (policies/*.yaml). Audit log: a fresh database in ${directory}.`);

    const billing = await connect(engine, 'billing-bot');
    const refunds = await connect(engine, 'refund-desk');
    const auditor = await connect(engine, 'auditor');
    const stranger = await connect(engine, 'mallory');
    clients.push(billing, refunds, auditor, stranger);
    const names = async (client: Client): Promise<string> => (await client.listTools()).tools.map((tool) => tool.name).join(', ') || 'none';
    say(`billing-bot sees: ${await names(billing)}`);
    say(`refund-desk sees: ${await names(refunds)}`);
    say(`auditor sees:     ${await names(auditor)}`);
    say(`mallory (no policy) sees: ${await names(stranger)}`);

    step(1, 'billing-bot makes a pay link for invoice 2026-114 over 450.00 EUR, to send with the invoice by e-mail');
    const created = await call(billing, 'create_invoice_payment', { invoice_id: '2026-114', amount: '450.00' });
    if (created.isError) throw new Error(`the demo's first pay link failed: ${failure(created)}`);
    const linkId = field(created, 'payment_link_id');
    say(`payment link ${linkId} is ${field(created, 'status')}, payable until ${field(created, 'expires_at').slice(0, 10)} (30 days); pay link ${field(created, 'checkout_url')}`);
    const again = await call(billing, 'create_invoice_payment', { invoice_id: '2026-114', amount: '450.00' });
    say(`asked again for the same invoice and amount: ${field(again, 'payment_link_id')}, reused: ${field(again, 'reused')} (no second link)`);

    step(2, 'Three days later the customer opens the link from the e-mail and pays (simulated)');
    mollieTime += 3 * 24 * 60 * 60 * 1000;
    const paidThrough = simulator.payThroughLink(linkId, 'paid');
    say(`the customer pays through the link 72 hours after it was made (a Payments API checkout would have expired after about 15 minutes): payment ${paidThrough.id} is ${paidThrough.status}`);

    step(3, 'billing-bot asks: has invoice 2026-114 been paid?');
    const status = await call(billing, 'get_payment_status', { invoice_id: '2026-114' });
    const paymentId = field(status, 'payment_id');
    say(`${field(status, 'status')}: ${field(status, 'status_label')}; payment ${paymentId}, refundable ${field(status, 'amount_remaining')}`);

    step(4, 'Invoice 2026-115 over 300.00 EUR: a pay link, then the customer pays 100.00 EUR by bank transfer');
    const whole = await call(billing, 'create_invoice_payment', { invoice_id: '2026-115', amount: '300.00' });
    say(`payment link ${field(whole, 'payment_link_id')} asks for ${field(whole, 'amount')}`);
    const rest = await call(billing, 'create_invoice_payment', { invoice_id: '2026-115', amount: '300.00', amount_already_paid: '100.00' });
    const replaced = (rest.structuredContent?.replaced ?? []) as string[];
    say(rest.isError ? `refused: ${failure(rest)}` : `payment link ${field(rest, 'payment_link_id')} asks only for the rest: ${field(rest, 'amount')}; replaced (archived first, so the old amount can no longer be paid): ${replaced.join(', ')}`);

    step(5, 'Invoice 2026-116 is credited before the customer pays: billing-bot withdraws its pay link');
    const credited = await call(billing, 'create_invoice_payment', { invoice_id: '2026-116', amount: '80.00' });
    const withdrawn = await call(billing, 'cancel_invoice_payment', { invoice_id: '2026-116' });
    const canceled = (withdrawn.structuredContent?.canceled ?? []) as { payment_link_id: string | null; status: string }[];
    say(withdrawn.isError ? `refused: ${failure(withdrawn)}` : `payment link ${field(credited, 'payment_link_id')} is now ${canceled[0]?.status ?? '?'}: a customer opening it can no longer pay`);

    step(6, `refund-desk refunds 20.00 EUR of payment ${paymentId}`);
    const refunded = await call(refunds, 'refund', { payment_id: paymentId, amount: '20.00', description: 'Goodwill refund' });
    say(refunded.isError ? `refused: ${failure(refunded)}` : `refund ${field(refunded, 'refund_id')} is ${field(refunded, 'status')} for ${field(refunded, 'amount')}`);

    step(7, 'refund-desk refunds 80.00 EUR: over 50.00 EUR its policy wants a person to approve (confirm_above)');
    const asked = await call(refunds, 'refund', { payment_id: paymentId, amount: '80.00' });
    const approvalId = (asked.structuredContent?.error as { approval_id?: string } | undefined)?.approval_id;
    if (!asked.isError || approvalId === undefined) throw new Error(`the demo's approval step went wrong: ${failure(asked)}`);
    say(`this client cannot show a prompt, so nothing moves yet: ${failure(asked)}`);
    const approved = engine.approvals.decide(approvalId, 'approved', 'finance-lead');
    say(`finance-lead runs \`mollie-invoice-mcp approve ${approvalId}\`: ${approved.ok ? 'approved' : approved.message}`);
    const repeated = await call(refunds, 'refund', { payment_id: paymentId, amount: '80.00', approval_id: approvalId });
    say(repeated.isError ? `refused: ${failure(repeated)}` : `repeated with approval_id: refund ${field(repeated, 'refund_id')} is ${field(repeated, 'status')} for ${field(repeated, 'amount')}`);
    const reused = await call(refunds, 'refund', { payment_id: paymentId, amount: '80.00', approval_id: approvalId });
    say(reused.isError ? `repeated once more, as an agent retrying might: ${failure(reused)}` : 'UNEXPECTEDLY ALLOWED TWICE');

    step(8, 'refund-desk tries to refund 150.00 EUR: over its per-call cap of 100.00 EUR');
    const tooMuch = await call(refunds, 'refund', { payment_id: paymentId, amount: '150.00' });
    say(tooMuch.isError ? `denied before reaching Mollie: ${failure(tooMuch)}` : 'UNEXPECTEDLY ALLOWED');

    step(9, 'An agent with no policy ("mallory") tries to create a pay link');
    const intruder = await call(stranger, 'create_invoice_payment', { invoice_id: '2026-999', amount: '5000.00' });
    say(intruder.isError ? `denied: ${failure(intruder)}` : 'UNEXPECTEDLY ALLOWED');

    step(10, 'billing-bot tries to refund: its policy does not list the refund tool');
    const notListed = await call(billing, 'refund', { payment_id: paymentId, amount: '5.00' });
    say(notListed.isError ? `denied: ${failure(notListed)}` : 'UNEXPECTEDLY ALLOWED');

    step(11, 'The auditor reads the log (list_logs, scope all)');
    const logs = await call(auditor, 'list_logs', { limit: 3 });
    const entries = (logs.structuredContent?.entries ?? []) as { summary: string }[];
    for (const entry of entries) say(`- ${entry.summary}`);

    step(12, 'The audit log, as `mollie-invoice-mcp audit list` prints it');
    const table = formatCallTable([...listCalls(engine.db, {}, 100).entries].reverse());
    for (const line of table) out(`   ${line}`);

    step(13, 'Verify the hash chain, as `mollie-invoice-mcp audit verify` does');
    const verified = engine.audit.verify();
    say(verified.ok ? `intact: ${verified.rows} rows (two per call, and one for each step of the approval), every hash recomputed and matching` : `BROKEN at row ${verified.firstBad.seq}: ${verified.firstBad.problem}`);
    out('\nTry it in a client: see README.md, "Try it in your client". Run `npm test` for the full suite.');
  } finally {
    for (const client of clients) await client.close();
    engine.close();
    rmSync(directory, { recursive: true, force: true });
  }
}
