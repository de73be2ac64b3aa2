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
