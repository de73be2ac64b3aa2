/** What the figures were measured on: they mean little without the machine, and these machines are shared and noisy. */
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median } from './stats.js';

export interface Machine {
  node: string;
  cores: number;
  cpu: string;
  memoryGb: number;
  os: string;
  loadAtStart: number[];
  /** Median time of one 4 KiB write plus fsync in the temporary directory, where the benchmark's databases live. */
  fsyncMs: number;
}

export function describeMachine(): Machine {
  const file = join(tmpdir(), `mim-bench-fsync-${process.pid}`);
  const fd = openSync(file, 'w');
  const page = Buffer.alloc(4096, 1);
  const times: number[] = [];
  for (let i = 0; i < 100; i++) {
    const started = performance.now();
    writeSync(fd, page, 0, page.length, i * 4096);
    fsyncSync(fd);
    times.push(performance.now() - started);
  }
  closeSync(fd);
  rmSync(file, { force: true });
  return {
    node: process.version,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    loadAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
    fsyncMs: median(times),
  };
}

