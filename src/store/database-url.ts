/**
 * MOLLIE_MCP_DATABASE_URL (or --database-url): a PostgreSQL connection string. Its password is a secret: everything
 * shown to a person (logs, errors, the audit log) names the database by `described`, which leaves the password out,
 * and any driver message passes through `scrub` first.
 */

export class DatabaseUrlError extends Error {}

export interface DatabaseUrl {
  /** The connection string as given, for the driver only. */
  readonly url: string;
  /** user@host:port/database, with no password: what messages and logs show. */
  readonly described: string;
  /** Replaces the password (and its URL-encoded form) wherever it appears in a text. */
  scrub(text: string): string;
}

export function parseDatabaseUrl(value: string, source = 'MOLLIE_MCP_DATABASE_URL'): DatabaseUrl {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    // The value itself may hold a password: it is not repeated.
    throw new DatabaseUrlError(`${source} is not a URL; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE.`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DatabaseUrlError(`${source} must start with postgres:// or postgresql:// (a PostgreSQL server); for a SQLite file, set MOLLIE_MCP_DB instead.`);
  }
  if (parsed.hostname === '') throw new DatabaseUrlError(`${source} names no host; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE.`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '') throw new DatabaseUrlError(`${source} names no database; add it after the host, as in postgres://USER:PASSWORD@HOST:5432/mollie_mcp.`);
  const password = parsed.password;
  const secrets = password === '' ? [] : [...new Set([password, safeDecode(password)])].filter((secret) => secret.length > 0);
  const user = parsed.username === '' ? '' : `${safeDecode(parsed.username)}@`;
  const described = `${user}${parsed.hostname}${parsed.port === '' ? '' : `:${parsed.port}`}/${database}`;
  return {
    url: value,
    described,
    scrub(text: string): string {
      let clean = text.split(value).join(`postgres://${described}`);
      for (const secret of secrets) clean = clean.split(secret).join('***');
      return clean;
    },
  };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
