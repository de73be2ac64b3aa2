/**
 * 5. Cold start: from spawning `serve --simulator` over stdio to the answer to tools/list, and the process's peak
 * resident memory (VmHWM) read at that moment; beside it the floors on this machine (see ColdStart).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median } from './stats.js';
import { CLI, createBenchWorkspace } from './workspace.js';

/** One kind of process started over and over: its start-up times and peak memory. */
export interface StartSeries {
  label: string;
  ms: number[];
  peakMb: number[];
  medianMs: number;
  medianPeakMb: number;
}

export interface ColdStart {
  runs: number;
  /** This server, as a client starts it. */
  ours: StartSeries;
  /**
   * The floors, measured alternately in the same run: a bare `node` that answers one line; the no-op server on the
   * same MCP SDK, zod and tool schemas, bundled and started from its code cache the same way; and that no-op server
   * after it opened the database as this server does (better-sqlite3 and the schema).
   */
  bareNode: StartSeries;
  noop: StartSeries;
  noopWithDatabase: StartSeries;
}

const REQUESTS = [
  { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1.0.0' } } },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', id: 2, method: 'tools/list' },
].map((message) => `${JSON.stringify(message)}\n`).join('');

const NOOP = new URL('./noop-launch.js', import.meta.url).pathname;

function peakMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Spawns, writes the requests at once (as a client does), and resolves when a line answering `done` arrives. */
function once(args: string[], env: Record<string, string>, done: (line: string) => boolean): Promise<{ ms: number; peakMb: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (lines.some(done)) {
        const ms = performance.now() - started;
        const peak = peakMb(child.pid!);
        child.kill('SIGKILL');
        child.once('exit', () => resolve({ ms, peakMb: peak }));
      }
    });
    child.once('error', reject);
    child.stdin.write(REQUESTS);
  });
}

export async function coldStart(runs = 20): Promise<ColdStart> {
  const workspace = createBenchWorkspace();
  const env = workspace.env({ MOLLIE_MCP_AGENT: 'bench-agent' });
  const toolsListed = (line: string): boolean => line.includes('"id":2') && line.includes('"tools"');
  const kinds: { label: string; args: string[]; env: Record<string, string>; done: (line: string) => boolean }[] = [
    { label: 'mollie-invoice-mcp', args: [CLI, 'serve', '--simulator'], env, done: toolsListed },
    { label: 'bare node', args: ['-e', "process.stdin.once('data', () => process.stdout.write('{}\\n'))"], env, done: () => true },
    { label: 'no-op server (same SDK, bundled, code cache)', args: [NOOP], env, done: toolsListed },
    { label: 'no-op server + the database opened', args: [NOOP], env: { ...env, NOOP_OPEN_DATABASE: join(workspace.dir, 'noop.db') }, done: toolsListed },
  ];
  const series = kinds.map((kind): StartSeries => ({ label: kind.label, ms: [], peakMb: [], medianMs: 0, medianPeakMb: 0 }));
  try {
    // One unmeasured start of each, so the first run does not pay for a cold disk cache alone.
    for (const kind of kinds) await once(kind.args, kind.env, kind.done);
    for (let i = 0; i < runs; i++) {
      for (const [index, kind] of kinds.entries()) {
        const run = await once(kind.args, kind.env, kind.done);
        series[index]!.ms.push(run.ms);
        series[index]!.peakMb.push(run.peakMb);
      }
    }
  } finally {
    workspace.remove();
  }
  for (const one of series) {
    one.medianMs = median(one.ms);
    one.medianPeakMb = median(one.peakMb);
  }
  const [ours, bareNode, noop, noopWithDatabase] = series as [StartSeries, StartSeries, StartSeries, StartSeries];
  return { runs, ours, bareNode, noop, noopWithDatabase };
}
