/** The audit log as people read it: one aligned line per call, oldest first. */
import type { CallEntry } from './call-entries.js';
import { printable } from './printable.js';

const COLUMNS: { title: string; width: number; cell(entry: CallEntry): string }[] = [
  { title: 'time (UTC)', width: 19, cell: (entry) => entry.at.slice(0, 19).replace('T', ' ') },
  { title: 'agent', width: 14, cell: (entry) => entry.agent ?? '-' },
  { title: 'tool', width: 22, cell: (entry) => entry.tool ?? '-' },
  { title: 'decision', width: 8, cell: (entry) => entry.decision },
  { title: 'outcome', width: 7, cell: (entry) => entry.outcome },
  { title: 'amount', width: 12, cell: (entry) => (entry.amount ? `${entry.amount.value} ${entry.amount.currency}` : (entry.amount_asked ?? '')) },
  // Which policy file decided: the first 12 hex digits of its sha256 (audit export has all 64).
  { title: 'policy', width: 12, cell: (entry) => entry.policy_sha256?.slice(0, 12) ?? '' },
];

function pad(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}~` : text.padEnd(width);
}

export function formatCallTable(entries: readonly CallEntry[]): string[] {
  const header = [...COLUMNS.map((column) => pad(column.title, column.width)), 'what happened'].join('  ');
  const rows = entries.map((entry) =>
    [...COLUMNS.map((column) => pad(printable(column.cell(entry)), column.width)), printable(entry.summary), entry.rule ? `[rule: ${printable(entry.rule)}]` : ''].join('  ').trimEnd(),
  );
  return [header, '-'.repeat(Math.min(header.length + 40, 160)), ...rows];
}
