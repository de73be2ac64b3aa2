/** 3. Streamable HTTP: 1, 8 and 32 SDK clients at once, each calling get_payment_status one call after another. */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { summarize, type Summary } from './stats.js';
import { CLI, createBenchWorkspace } from './workspace.js';

export interface HttpRow {
  clients: number;
  calls: number;
  perSecond: number;
  latency: Summary;
}

export async function httpThroughput(callsPerLevel = 1600): Promise<HttpRow[]> {
  const token = `mim_${randomBytes(32).toString('base64url')}`;
  const workspace = createBenchWorkspace(createHash('sha256').update(token).digest('hex'));
  // One agent stands for every client here: 1 + 8 + 32 sessions over the three levels, more than the default cap.
  const env = { ...workspace.env(), MOLLIE_MCP_SESSIONS_PER_AGENT: '100' };
  const child = spawn(process.execPath, [CLI, 'serve', '--transport', 'http', '--port', '0', '--simulator'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      const match = /"url":"(http:\/\/[^"]+\/mcp)"/.exec(seen);
      if (match) {
        child.stderr.off('data', onData);
        child.stderr.resume();
        resolve(match[1]!);
      }
    };
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the HTTP server exited (${code}): ${seen.slice(-2000)}`)));
  });
  const open = async (): Promise<Client> => {
    const client = new Client({ name: 'bench-http', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return client;
  };
  try {
    const first = await open();
    const created = await first.callTool({ name: 'create_invoice_payment', arguments: { invoice_id: 'BENCH-1', amount: '10.00', kind: 'checkout' } });
    const paymentId = String((created.structuredContent as Record<string, unknown>).payment_id);
    // Steady state first, as for stdio: the server's code optimised before anything is measured.
    for (let i = 0; i < 1000; i++) await first.callTool({ name: 'get_payment_status', arguments: { payment_id: paymentId } });
    await first.close();
    const rows: HttpRow[] = [];
    for (const clients of [1, 8, 32]) {
      const connected = await Promise.all(Array.from({ length: clients }, open));
      const call = async (client: Client): Promise<number> => {
        const started = performance.now();
        const reply = await client.callTool({ name: 'get_payment_status', arguments: { payment_id: paymentId } });
        if (reply.isError) throw new Error(`get_payment_status failed over HTTP: ${JSON.stringify(reply.structuredContent)}`);
        return performance.now() - started;
      };
      for (const client of connected) await call(client);
      const perClient = Math.max(20, Math.round(callsPerLevel / clients));
      const latencies: number[] = [];
      const started = performance.now();
      await Promise.all(connected.map(async (client) => {
        for (let i = 0; i < perClient; i++) latencies.push(await call(client));
      }));
      const seconds = (performance.now() - started) / 1000;
      rows.push({ clients, calls: latencies.length, perSecond: latencies.length / seconds, latency: summarize(latencies) });
      await Promise.all(connected.map((client) => client.close()));
    }
    return rows;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    workspace.remove();
  }
}
