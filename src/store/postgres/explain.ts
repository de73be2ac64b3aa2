/**
 * A PostgreSQL driver error, as a person should read it: the password scrubbed out, the database named as
 * user@host:port/database, and what to check next.
 */
import type { DatabaseUrl } from '../database-url.js';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    message: string,
    readonly code: string | undefined = undefined,
  ) {
    super(message);
  }
}

export function explainPostgresError(database: DatabaseUrl, error: { message?: string; code?: string } | unknown): StoreError {
  if (error instanceof StoreError) return error;
  const code = (error as { code?: string } | null)?.code ?? '';
  const raw = error instanceof Error ? error.message : (error as { message?: string } | null)?.message ?? String(error);
  const message = database.scrub(raw);
  const where = `PostgreSQL at ${database.described}`;
  if (code === '28P01' || code === '28000') return new StoreError(`${where} refused the login: ${message}. Check the user and password in MOLLIE_MCP_DATABASE_URL.`, code);
  if (code === '3D000') return new StoreError(`${where}: ${message}. Create the database first (createdb), then start again.`, code);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || code === 'EAI_AGAIN') {
    return new StoreError(`Could not reach ${where}: ${message}. Check the host and port, and that the server is running.`, code);
  }
  return new StoreError(`${where}: ${message}`, code === '' ? undefined : code);
}
