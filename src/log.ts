/**
 * The process logger. Logs go to stderr, always: in stdio mode stdout belongs to the MCP protocol.
 * Redaction is a second line of defence; the first is never putting secrets in log objects at all.
 */
import pino, { type Logger } from 'pino';

export const REDACTED_PATHS = [
  'apiKey',
  'accessToken',
  'token',
  'authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.apiKey',
  '*.accessToken',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    { name: 'mollie-invoice-mcp', level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    pino.destination({ fd: 2, sync: true }),
  );
}

/**
 * The logger for the one line each call writes ("Call completed", "Call denied", ...). Its fields are ids, codes and a
 * duration, none of them under a redacted key, so redaction could never change that line: this second pino, on the
 * same destination, level and name, skips the work (about 5 µs a line). Everything else, errors above all, goes
 * through `logger` and its redaction.
 */
export function callLineLogger(logger: Logger): Logger {
  const bindings = logger.bindings() as { name?: string };
  return pino(
    { level: logger.level, ...(bindings.name ? { name: bindings.name } : {}) },
    (logger as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym],
  );
}
