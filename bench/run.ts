/**
 * `npm run bench`: runs the five benchmarks one after another (cold start first) and writes BENCHMARKS.md, figures
 * and targets side by side. BENCH_CALLS sets the size of the log at scale (default 1,000,000) for a quicker look.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { coldStart } from './cold-start.js';
import { gateOverhead } from './gate-overhead.js';
import { httpThroughput } from './http.js';
import { logAtScale } from './log-scale.js';
import { postgresStore } from './postgres.js';
import { describeMachine } from './machine.js';
import { writeReport } from './report.js';
import { stdioThroughput } from './stdio.js';

const started = performance.now();
/** Writes back the dirty pages of what ran before (the log at scale leaves a gigabyte), so each step starts on a quiet disk. */
function settleDisk(): void {
  try {
    execFileSync('sync', { stdio: 'ignore' });
  } catch {
    // No sync command here: the step runs anyway.
  }
}

const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
  settleDisk();
  process.stderr.write(`bench: ${name}...`);
  const begun = performance.now();
  const result = await work();
  process.stderr.write(` ${((performance.now() - begun) / 1000).toFixed(1)} s\n`);
  return result;
};

const machine = describeMachine();
const calls = Number(process.env.BENCH_CALLS ?? 1_000_000);
// Cold start first, on a quiet machine: after the log at scale, gigabytes still being written back slow every spawn.
const cold = await step('5. cold start', () => coldStart());
const gate = await step('1. gate overhead', () => gateOverhead());
const stdio = await step('2. stdio throughput', () => stdioThroughput());
const http = await step('3. HTTP', () => httpThroughput());
const log = await step(`4. the log at scale (${calls.toLocaleString('en')} calls)`, () => logAtScale(calls));
const postgres = await step(`6. the PostgreSQL store (${calls.toLocaleString('en')} calls at scale)`, () => postgresStore(calls));
const totalSeconds = (performance.now() - started) / 1000;
const out = new URL('../../BENCHMARKS.md', import.meta.url).pathname;
writeFileSync(out, writeReport({ machine, gate, stdio, http, log, cold, postgres, totalSeconds, date: new Date() }));
process.stderr.write(`bench: wrote ${out} in ${totalSeconds.toFixed(0)} s\n`);
