/**
 * 5. Cold start: from spawning `serve --simulator` over stdio to the answer to tools/list, and the process's peak
 * resident memory (VmHWM) read at that moment. A bare `node` that answers one line is the floor on this machine.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { median } from './stats.js';
import { CLI, createBenchWorkspace } from './workspace.js';

export interface ColdStart {
  runs: number;
  ms: number[];
  peakMb: number[];
  floorMs: number[];
  floorPeakMb: number[];
  medianMs: number;
  medianPeakMb: number;
  medianFloorMs: number;
  medianFloorPeakMb: number;
}

const REQUESTS = [
  { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1.0.0' } } },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', id: 2, method: 'tools/list' },
].map((message) => `${JSON.stringify(message)}\n`).join('');

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
  const floor = ['-e', "process.stdin.once('data', () => process.stdout.write('{}\\n'))"];
  const result: ColdStart = { runs, ms: [], peakMb: [], floorMs: [], floorPeakMb: [], medianMs: 0, medianPeakMb: 0, medianFloorMs: 0, medianFloorPeakMb: 0 };
  try {
    // One unmeasured start of each, so the first run does not pay for a cold disk cache alone.
    await once([CLI, 'serve', '--simulator'], env, (line) => line.includes('"id":2'));
    await once(floor, env, () => true);
    for (let i = 0; i < runs; i++) {
      const ours = await once([CLI, 'serve', '--simulator'], env, (line) => line.includes('"id":2') && line.includes('"tools"'));
      result.ms.push(ours.ms);
      result.peakMb.push(ours.peakMb);
      const bare = await once(floor, env, () => true);
      result.floorMs.push(bare.ms);
      result.floorPeakMb.push(bare.peakMb);
    }
  } finally {
    workspace.remove();
  }
  result.medianMs = median(result.ms);
  result.medianPeakMb = median(result.peakMb);
  result.medianFloorMs = median(result.floorMs);
  result.medianFloorPeakMb = median(result.floorPeakMb);
  return result;
}
