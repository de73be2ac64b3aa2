/** The process log: the per-call line goes to the same place, at the same level and name, as everything else. */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { callLineLogger, REDACTED_PATHS } from '../src/log.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _encoding, done) { chunks.push(String(chunk)); done(); } });
  return { stream, lines: () => chunks.join('').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('callLineLogger', () => {
  it('writes to the logger\'s destination with its name and level, and nothing below that level', () => {
    const { stream, lines } = capture();
    const logger = pino({ name: 'mollie-invoice-mcp', level: 'warn', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream);
    const calls = callLineLogger(logger);
    calls.info({ audit_id: 'a1', outcome: 'ok' }, 'Call completed');
    calls.warn({ audit_id: 'a2', outcome: 'error' }, 'Call failed');
    logger.error({ token: 'never-this' }, 'A problem');
    expect(lines().map((line) => [line.name, line.msg, line.audit_id])).toEqual([
      ['mollie-invoice-mcp', 'Call failed', 'a2'],
      ['mollie-invoice-mcp', 'A problem', undefined],
    ]);
    expect(JSON.stringify(lines())).not.toContain('never-this');
  });
});
