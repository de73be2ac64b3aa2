/** A throwaway directory with the benchmark's policies and database, and the environment a server runs with there. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLI = new URL('../src/cli.js', import.meta.url).pathname;

/** bench-agent may use every read tool and issue pay links without a rate limit, so the limit is never what is measured. */
const BENCH_POLICY = `agent: bench-agent
description: Benchmark agent
modes: [test]
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100000.00", per_day: "100000000.00", count_per_day: 1000000 }
  get_payment_status: {}
  list_logs: { scope: all }
`;

export interface BenchWorkspace {
  dir: string;
  policies: string;
  db: string;
  env(extra?: Record<string, string>): Record<string, string>;
  remove(): void;
}

export function createBenchWorkspace(tokenSha256?: string): BenchWorkspace {
  const dir = mkdtempSync(join(tmpdir(), 'mim-bench-'));
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  writeFileSync(join(policies, 'bench-agent.yaml'), tokenSha256 ? `${BENCH_POLICY}token_sha256: ${tokenSha256}\n` : BENCH_POLICY);
  const db = join(dir, 'audit.db');
  return {
    dir,
    policies,
    db,
    env: (extra = {}) => ({ PATH: process.env.PATH ?? '', HOME: dir, MOLLIE_MCP_POLICIES: policies, MOLLIE_MCP_DB: db, MOLLIE_MCP_CHECKOUT_PORT: '0', LOG_LEVEL: 'info', ...extra }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
