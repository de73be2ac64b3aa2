/** BENCHMARKS.md: every figure next to its target, and whether it was met in this run. */
import type { ColdStart } from './cold-start.js';
import type { OverheadResult, WritesFloor } from './gate-overhead.js';
import type { HttpRow } from './http.js';
import type { LogScaleResult } from './log-scale.js';
import type { Machine } from './machine.js';
import type { PostgresResult } from './postgres.js';
import type { ThroughputRow } from './stdio.js';

export interface Report {
  machine: Machine;
  gate: { results: OverheadResult[]; writes: WritesFloor };
  stdio: ThroughputRow[];
  http: HttpRow[];
  log: LogScaleResult;
  cold: ColdStart;
  postgres: PostgresResult;
  totalSeconds: number;
  date: Date;
}

const us = (value: number): string => `${Math.round(value)} µs`;
const ms = (value: number, digits = 2): string => `${value.toFixed(digits)} ms`;
const int = (value: number): string => Math.round(value).toLocaleString('en');
const met = (ok: boolean): string => (ok ? 'met' : '**not met**');

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

export function writeReport(report: Report): string {
  const { machine, gate, stdio, http, log, cold, postgres } = report;
  const sequential = (server: ThroughputRow['server']) => stdio.find((row) => row.server === server && row.inFlight === 1)!;
  const parallel = (server: ThroughputRow['server']) => stdio.find((row) => row.server === server && row.inFlight === 16)!;
  const seqRatio = sequential('mollie-invoice-mcp').perSecond / sequential('no-op').perSecond;
  const parRatio = parallel('mollie-invoice-mcp').perSecond / parallel('no-op').perSecond;
  const read = gate.results.find((row) => row.tool === 'get_payment_status')!;
  // Mean milliseconds per sequential call, from the rate: the figure the ratio compares.
  const noopMean = 1000 / sequential('no-op').perSecond;
  const boundGate = noopMean / (noopMean + read.gate.mean / 1000);
  const boundWrites = noopMean / (noopMean + (gate.writes.latency.mean + read.direct.mean) / 1000);
  const worstP99 = Math.max(...log.queries.map((query) => query.latency.p99));
  // The log targets are for 1,000,000 calls; a smaller BENCH_CALLS run says so rather than claim them.
  const atScale = (ok: boolean): string => (log.calls >= 1_000_000 ? met(ok) : 'smaller run (BENCH_CALLS)');
  const lines: string[] = [];
  lines.push(
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${report.date.toISOString().slice(0, 16).replace('T', ' ')} UTC in ${Math.round(report.totalSeconds)} s. Node ${machine.node}, ${machine.cores} cores (${machine.cpu}), ${machine.memoryGb} GiB, ${machine.os}; load average at start ${machine.loadAtStart.join(', ')}; one 4 KiB write + fsync in the temporary directory: ${ms(machine.fsyncMs)} (median of 100).`,
    '',
    'These machines are shared and noisy: compare medians, and ratios from the same run. Nothing in `npm test` asserts a timing.',
    '',
    '## Targets',
    '',
    table(['what', 'target', 'this run', ''], [
      ['gate overhead, p50 (get_payment_status)', '≤ 100 µs', us(read.overheadP50), met(read.overheadP50 <= 100)],
      ['stdio sequential throughput vs the no-op server on the same SDK', '≥ 0.5', seqRatio.toFixed(2), met(seqRatio >= 0.5)],
      [`list_logs p99 on ${int(log.calls)} calls, worst filter`, '≤ 10 ms', ms(worstP99), atScale(worstP99 <= 10)],
      [`audit verify of ${int(log.calls)} calls`, '≤ 5 s', `${log.verifySeconds.toFixed(1)} s`, atScale(log.verifySeconds <= 5)],
      [`generating ${int(log.calls)} calls`, '< 60 s', `${log.generateSeconds.toFixed(1)} s`, atScale(log.generateSeconds < 60)],
      ['cold start, spawn to tools/list answered (median)', '≤ 100 ms', ms(cold.ours.medianMs, 0), met(cold.ours.medianMs <= 100)],
      ['cold start, peak resident memory (median)', '≤ 55 MB', `${cold.ours.medianPeakMb.toFixed(1)} MB`, met(cold.ours.medianPeakMb <= 55)],
      ['`npm run bench`', '< 5 min', `${Math.round(report.totalSeconds)} s`, met(report.totalSeconds < 300)],
      [`audit verify of ${int(postgres.log.calls)} calls on PostgreSQL`, 'none yet', `${postgres.log.verifySeconds.toFixed(1)} s`, ''],
    ]),
    '',
    '## 1. Gate overhead',
    '',
    'The same call in process on the simulator, through the full gate (validation, policy, decision and outcome rows, the call\'s in-flight mark or budget reservation, log line) and straight to the tool\'s own prepare and run. Alternating, one call each.',
    '',
    table(['tool', 'calls', 'through the gate p50 / p99 / max', 'without p50 / p99', 'overhead p50 / p99', 'ratio p50'], gate.results.map((row) => [
      row.tool, int(row.gate.n), `${us(row.gate.p50)} / ${us(row.gate.p99)} / ${us(row.gate.max)}`, `${us(row.direct.p50)} / ${us(row.direct.p99)}`, `${us(row.overheadP50)} / ${us(row.overheadP99)}`, `${row.ratioP50.toFixed(2)}x`,
    ])),
    '',
    `The gate's database writes alone for one read-only call (two BEGIN IMMEDIATE commits: decision row and the call's open_reads mark, then outcome row and the mark's removal; ${int(gate.writes.calls)} calls): p50 ${us(gate.writes.latency.p50)}, p99 ${us(gate.writes.latency.p99)}, max ${us(gate.writes.latency.max)}. That is the floor under the read-only overhead on this machine: SQLite writes each dirty page (the table and every index the row touches) as a WAL frame at each commit.`,
    '',
    'The max is a call that crossed the WAL checkpoint line (every 4000 pages, about 235 calls): SQLite copies the WAL back into the database inside that commit.',
    '',
    'get_payment_status and list_logs move no money: their rows are committed without an fsync each (synchronous=NORMAL in WAL; they reach the disk with the next money-moving commit or checkpoint). create_invoice_payment and refund fsync each of their two commits (synchronous=FULL), so their overhead includes two fsyncs on this disk.',
    '',
    '## 2. Stdio throughput',
    '',
    '`get_payment_status` of one payment on the simulator through the MCP SDK client over stdio, and the same client against a no-op server on the same SDK that lists the same tools and answers at once (the transport\'s ceiling).',
    '',
    table(['server', 'in flight', 'calls', 'calls/s', 'p50', 'p99'], stdio.map((row) => [row.server, String(row.inFlight), int(row.calls), int(row.perSecond), ms(row.latency.p50), ms(row.latency.p99)])),
    '',
    `Ratio to the no-op server: ${seqRatio.toFixed(2)} sequential, ${parRatio.toFixed(2)} with 16 in flight. Both servers first answer 2,000 calls one at a time and 400 at 16 in flight, so V8 has optimised their code before anything is measured.`,
    '',
    `What bounds the sequential ratio: the no-op server's call takes ${ms(noopMean, 3)} on average. The same call through this server's gate, in process with no transport at all, takes ${ms(read.gate.mean / 1000, 3)} on average (section 1, WAL checkpoints included), and the gate's two commits alone ${ms(gate.writes.latency.mean / 1000, 3)}. Even if the stdio path added nothing to the gate, the ratio could be at most ${boundGate.toFixed(2)}; with a gate that did nothing but its two commits and the tool itself, at most ${boundWrites.toFixed(2)}.`,
    '',
    '## 3. Streamable HTTP',
    '',
    '`get_payment_status` over `serve --transport http` on the simulator; each SDK client has its own session and bearer token check, and calls one after another.',
    '',
    table(['clients', 'calls', 'calls/s', 'p50', 'p99'], http.map((row) => [String(row.clients), int(row.calls), int(row.perSecond), ms(row.latency.p50), ms(row.latency.p99)])),
    '',
    '## 4. The log at scale',
    '',
    `${int(log.calls)} calls (${int(log.verifiedRows)} hash-chained rows) of ${log.agents} agents over a year, generated in ${log.generateSeconds.toFixed(1)} s. Then \`list_logs\` through the gate (the full call, as an agent makes it), 200 calls per filter with random agents, payments, windows and cursors; each returns up to 50 entries.`,
    '',
    table(['filter', 'example', 'entries', 'p50', 'p99', 'target p99 ≤ 10 ms'], log.queries.map((query) => [query.filter, `\`${query.args}\``, query.entries.toFixed(1), ms(query.latency.p50), ms(query.latency.p99), met(query.latency.p99 <= 10)])),
    '',
    'The console\'s auditor pages read the same log (in process, the data behind the page; the HTML adds little): the story of a random payment and invoice, and the 30 days of figures behind the charts, ending at the newest call.',
    '',
    table(['page', 'last answer', 'p50', 'p99'], log.console.map((page) => [page.page, page.size, ms(page.latency.p50), ms(page.latency.p99)])),
    '',
    `\`mollie-invoice-mcp audit verify\` of the whole chain (the command, start-up included; worker threads, one per core): ${log.verifySeconds.toFixed(1)} s (${((log.verifySeconds / log.verifiedRows) * 1e6).toFixed(1)} µs per row). Database size: ${(log.bytes / 2 ** 20).toFixed(0)} MiB, ${(log.bytesPer1000Calls / 2 ** 20).toFixed(2)} MiB per 1,000 calls.`,
    '',
    '## 5. Cold start (stdio)',
    '',
    `From spawning \`node dist/src/cli.js serve --simulator\` to the answer to \`tools/list\` (initialize, initialized and tools/list written at once, as a client does), and the peak resident memory (VmHWM) at that moment; ${cold.runs} runs of each, alternating, before the other benchmarks so the machine is quiet. The floors: a bare \`node\` that answers one line; the no-op server of section 2 (the same MCP SDK, zod and tool schemas, nothing else), bundled and started from its code cache exactly as this server is; and that no-op server after it has opened the database as this server does (better-sqlite3 and the schema).`,
    '',
    table(['', 'time median', 'min', 'max', 'peak memory median', 'min', 'max'], [cold.ours, cold.noopWithDatabase, cold.noop, cold.bareNode].map((one) => [
      one.label, ms(one.medianMs, 0), ms(Math.min(...one.ms), 0), ms(Math.max(...one.ms), 0), `${one.medianPeakMb.toFixed(1)} MB`, `${Math.min(...one.peakMb).toFixed(1)} MB`, `${Math.max(...one.peakMb).toFixed(1)} MB`,
    ])),
    '',
    `Above the no-op server with its database, this server takes ${ms(cold.ours.medianMs - cold.noopWithDatabase.medianMs, 0)} and ${(cold.ours.medianPeakMb - cold.noopWithDatabase.medianPeakMb).toFixed(1)} MB more: reading and checking the policies (yaml, zod), the logger, the simulator, its prepared statements and its first transaction. The no-op server with its database alone needs ${cold.noopWithDatabase.medianPeakMb.toFixed(1)} MB, against the 55 MB target.`,
    '',
    '## 6. The shared PostgreSQL store',
    '',
    'A throwaway cluster of Debian\'s PostgreSQL 15 on this machine (loopback, fsync on). Every statement goes from the server\'s thread to a worker thread that owns the connection (src/store/postgres/pg-database.ts), and every write transaction first locks the store\'s single write-lock row, as SQLite\'s BEGIN IMMEDIATE does.',
    '',
    `**Gate overhead on PostgreSQL** (as section 1, get_payment_status, ${int(postgres.gate.gate.n)} calls): through the gate p50 ${us(postgres.gate.gate.p50)}, p99 ${us(postgres.gate.gate.p99)}; without it p50 ${us(postgres.gate.direct.p50)}; overhead p50 ${us(postgres.gate.overheadP50)} (${(postgres.gate.overheadP50 / Math.max(1, read.overheadP50)).toFixed(1)}x the overhead on SQLite in section 1).`,
    '',
    '**HTTP replicas.** `serve --transport http --stateless` processes on one database, and one on a SQLite file beside them; 16 SDK clients, each request to the next replica in turn, `get_payment_status` (two write transactions each: the decision and the outcome rows).',
    '',
    table(['store', 'replicas', 'calls', 'calls/s', 'p50', 'p99'], postgres.http.map((row) => [row.store, String(row.replicas), int(row.calls), int(row.perSecond), ms(row.latency.p50), ms(row.latency.p99)])),
    '',
    'What limits it: every call\'s two write transactions take the one write lock in turn, across replicas, each holding it for a few round trips to the database (the lock, the last row, the insert, the commit). More replicas add HTTP and MCP work in parallel on this 2-core machine, where the database, the clients and the replicas share the same cores; they do not add write capacity.',
    '',
    `**The log at scale on PostgreSQL.** \`db copy\` of a ${int(postgres.log.copyCalls)}-call log (one transaction, every row through the append-only triggers, then ANALYZE): ${postgres.log.copySeconds.toFixed(1)} s. A ${int(postgres.log.calls)}-call log like section 4's, loaded by the benchmark itself (as the superuser, triggers off), then \`list_logs\` through the gate, 100 calls per filter:`,
    '',
    table(['filter', 'p50', 'p99'], postgres.log.queries.map((query) => [query.filter, ms(query.latency.p50), ms(query.latency.p99)])),
    '',
    `\`audit verify\` (with MOLLIE_MCP_DATABASE_URL) of the whole chain and the budgets (the command, start-up included; one pass, 5,000 rows a page): ${postgres.log.verifySeconds.toFixed(1)} s for ${int(postgres.log.verifiedRows)} rows.`,
    '',
  );
  return lines.join('\n');
}
