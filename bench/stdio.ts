/**
 * 2. Stdio throughput: get_payment_status on the simulator through the SDK client, one call at a time and 16 in
 * flight; then the same client against the no-op server on the same SDK (the transport's ceiling).
 */
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client } from '@modelcontextprotocol/client';
import { drive, summarize, type Summary } from './stats.js';
import { CLI, createBenchWorkspace } from './workspace.js';

export interface ThroughputRow {
  server: 'mollie-invoice-mcp' | 'no-op';
  inFlight: number;
  calls: number;
  perSecond: number;
  latency: Summary;
}

const NOOP = new URL('./noop-server.js', import.meta.url).pathname;

async function connect(args: string[], env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args, env, stderr: 'ignore' }));
  await client.listTools();
  return client;
}

async function run(client: Client, server: ThroughputRow['server'], paymentId: string, calls: number): Promise<ThroughputRow[]> {
  const call = async (): Promise<void> => {
    const reply = await client.callTool({ name: 'get_payment_status', arguments: { payment_id: paymentId } });
    if (reply.isError) throw new Error(`get_payment_status failed: ${JSON.stringify(reply.structuredContent)}`);
  };
  // Steady state, as a server that has been answering for a while: this server has far more code for V8 to optimise
  // than the no-op one, and 200 calls left part of it still being compiled during the sequential run.
  await drive(2000, 1, call);
  await drive(400, 16, call);
  const rows: ThroughputRow[] = [];
  for (const inFlight of [1, 16]) {
    const { latencies, perSecond } = await drive(calls, inFlight, call);
    rows.push({ server, inFlight, calls, perSecond, latency: summarize(latencies) });
  }
  return rows;
}

export async function stdioThroughput(calls = 2000): Promise<ThroughputRow[]> {
  const workspace = createBenchWorkspace();
  const env = workspace.env({ MOLLIE_MCP_AGENT: 'bench-agent' });
  try {
    const ours = await connect([CLI, 'serve', '--simulator'], env);
    const created = await ours.callTool({ name: 'create_invoice_payment', arguments: { invoice_id: 'BENCH-1', amount: '10.00', kind: 'checkout' } });
    const paymentId = String((created.structuredContent as Record<string, unknown>).payment_id);
    const rows = await run(ours, 'mollie-invoice-mcp', paymentId, calls);
    await ours.close();
    const noop = await connect([NOOP], env);
    rows.push(...(await run(noop, 'no-op', 'tr_noop1234', calls)));
    await noop.close();
    return rows;
  } finally {
    workspace.remove();
  }
}
