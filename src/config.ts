/**
 * The server's configuration, merged in one place and one order: defaults, then the environment, then command-line
 * flags. Everything is checked here, so a typo stops the server at start with a message, not at the first payment.
 */
import { resolve } from 'node:path';
import { defaultDatabasePath } from './database.js';
import { DatabaseUrlError, parseDatabaseUrl, type DatabaseUrl } from './store/database-url.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface Config {
  policiesDir: string;
  dbPath: string;
  /** True when MOLLIE_MCP_DB was not set: the path is printed at start so the operator can find the log. */
  dbPathIsDefault: boolean;
  /** A shared PostgreSQL store (MOLLIE_MCP_DATABASE_URL, --database-url) instead of the SQLite file; never with MOLLIE_MCP_DB. */
  databaseUrl: DatabaseUrl | null;
  agent: string | null;
  token: string | null;
  redirectUrl: string | null;
  webhookUrl: string | null;
  /** How long a new payment link stays payable when the call gives no expires_at (MOLLIE_MCP_LINK_VALID_DAYS). */
  linkValidDays: number;
  /** Signed checkpoints of the audit log (MOLLIE_MCP_SIGNING_KEY and MOLLIE_MCP_CHECKPOINT_DIR, both or neither). */
  checkpoints: { keyPath: string; directory: string; everyRows: number; everyMs: number } | null;
  simulator: boolean;
  /** Loopback port of the simulator's checkout page when serving over stdio (MOLLIE_MCP_CHECKOUT_PORT). */
  checkoutPort: number;
  logLevel: string;
  http: HttpConfig;
  /** How long an out-of-band approval may wait to be given and used (MOLLIE_MCP_APPROVAL_TTL_SECONDS). */
  approvalTtlMs: number;
  /** How long a confirmation prompt in the client waits for an answer (MOLLIE_MCP_CONFIRM_TIMEOUT_SECONDS). */
  confirmTimeoutMs: number;
  /**
   * Ask the person in the client when it can show a form (MOLLIE_MCP_CONFIRM_IN_CLIENT, default 1); 0 sends every
   * approval out of band, for clients that declare the capability but never show the question.
   */
  confirmInClient: boolean;
  /** The people file naming approvers and auditors (MOLLIE_MCP_PEOPLE, --people); null: none, OS user names approve. */
  peopleFile: string | null;
  /** Where to POST a short chat message when an approval is asked (MOLLIE_MCP_APPROVAL_NOTIFY_URL). A secret: never logged. */
  approvalNotifyUrl: string | null;
  /** The console's public address for links in messages (MOLLIE_MCP_CONSOLE_URL); null: the HTTP server's own /console. */
  consoleUrl: string | null;
  /** A console session ends after this long without a request (MOLLIE_MCP_CONSOLE_IDLE_SECONDS). */
  consoleIdleMs: number;
  /** Refused tool calls an agent may make a minute, each with its rows; past it they are counted in a summary (MOLLIE_MCP_REFUSED_CALLS_PER_MINUTE). */
  refusedCallsPerMinute: number;
}

/** Settings of `serve --transport http`; read for every command so a typo fails at start, used only by HTTP. */
export interface HttpConfig {
  host: string;
  port: number;
  /** Browser origins allowed besides same-host localhost ones (MOLLIE_MCP_ALLOWED_ORIGINS), e.g. https://console.example.com. */
  allowedOrigins: string[];
  /** An idle session is closed after this long (MOLLIE_MCP_SESSION_IDLE_SECONDS). */
  sessionIdleMs: number;
  /** How many sessions one agent may have open at once (MOLLIE_MCP_SESSIONS_PER_AGENT), so one cannot lock out the rest. */
  sessionsPerAgent: number;
}

export interface ConfigFlags {
  simulator?: boolean;
  policies?: string;
  db?: string;
  databaseUrl?: string;
  host?: string;
  port?: string;
  people?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value.trim() === '' ? null : value.trim();
}

function checkUrl(name: string, value: string | null, rules: { httpsOnly: boolean; publicHost: boolean }): string | null {
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a URL; set it to an absolute URL such as https://pay.example.com/thanks.`);
  }
  if (url.protocol !== 'https:' && (rules.httpsOnly || url.protocol !== 'http:')) {
    throw new ConfigError(`${name} must use https${rules.httpsOnly ? '' : ' (or http)'}; got ${url.protocol.replace(':', '')}.`);
  }
  if (url.username !== '' || url.password !== '') throw new ConfigError(`${name} must not contain a user name or password.`);
  if (rules.publicHost && isLoopbackOrPrivate(url.hostname)) {
    throw new ConfigError(`${name} must be reachable from Mollie, so not ${url.hostname}; use the public https address of this server's /webhooks/mollie.`);
  }
  return url.toString();
}

function isLoopbackOrPrivate(host: string): boolean {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '::1' ||
    name === '0.0.0.0' ||
    /^127\./.test(name) ||
    /^10\./.test(name) ||
    /^192\.168\./.test(name) ||
    /^172\.(1[6-9]|2[0-9]|3[01])\./.test(name) ||
    /^169\.254\./.test(name)
  );
}

function readPort(value: string | null): number {
  if (value === null) return 3333;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new ConfigError(`--port must be a number from 0 to 65535 (0 picks a free port); got "${value}".`);
  return Number(value);
}

function readCheckoutPort(value: string | null): number {
  if (value === null) return 3334;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ConfigError(`MOLLIE_MCP_CHECKOUT_PORT must be a port number from 0 to 65535 (0 picks a free port); got "${value}".`);
  }
  return Number(value);
}

function readOrigins(value: string | null): string[] {
  if (value === null) return [];
  return value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').map((entry) => {
    let url: URL | null = null;
    try {
      url = new URL(entry);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== entry.replace(/\/$/, '')) {
      throw new ConfigError(`MOLLIE_MCP_ALLOWED_ORIGINS must be a comma-separated list of origins such as https://console.example.com (scheme, host and port only); "${entry}" is not one.`);
    }
    return url.origin;
  });
}

function readSeconds(name: string, value: string | null, fallback: number): number {
  if (value === null) return fallback * 1000;
  if (!/^[1-9][0-9]{0,6}$/.test(value)) throw new ConfigError(`${name} must be a whole number of seconds from 1; got "${value}".`);
  return Number(value) * 1000;
}

function readLinkValidDays(value: string | null): number {
  if (value === null) return 30;
  if (!/^[0-9]{1,3}$/.test(value) || Number(value) < 1 || Number(value) > 365) {
    throw new ConfigError(`MOLLIE_MCP_LINK_VALID_DAYS must be a whole number of days from 1 to 365 (how long a new pay link stays payable); got "${value}".`);
  }
  return Number(value);
}

function readWholeNumber(name: string, value: string | null, fallback: number, max: number): number {
  if (value === null) return fallback;
  if (!/^[0-9]{1,7}$/.test(value) || Number(value) < 1 || Number(value) > max) throw new ConfigError(`${name} must be a whole number from 1 to ${max}; got "${value}".`);
  return Number(value);
}

function readCheckpoints(env: Env, cwd: string): Config['checkpoints'] {
  const keyPath = nonEmpty(env.MOLLIE_MCP_SIGNING_KEY);
  const directory = nonEmpty(env.MOLLIE_MCP_CHECKPOINT_DIR);
  if (keyPath === null && directory === null) return null;
  if (keyPath === null || directory === null) {
    throw new ConfigError(`Signed checkpoints need both MOLLIE_MCP_SIGNING_KEY (the key file from \`keys create\`) and MOLLIE_MCP_CHECKPOINT_DIR (where checkpoints go); ${keyPath === null ? 'MOLLIE_MCP_SIGNING_KEY' : 'MOLLIE_MCP_CHECKPOINT_DIR'} is not set.`);
  }
  return {
    keyPath: resolve(cwd, keyPath),
    directory: resolve(cwd, directory),
    everyRows: readWholeNumber('MOLLIE_MCP_CHECKPOINT_ROWS', nonEmpty(env.MOLLIE_MCP_CHECKPOINT_ROWS), 1000, 1_000_000),
    everyMs: readWholeNumber('MOLLIE_MCP_CHECKPOINT_SECONDS', nonEmpty(env.MOLLIE_MCP_CHECKPOINT_SECONDS), 300, 86_400) * 1000,
  };
}

function urlOrNull(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/** A URL whose path may be a secret (a chat webhook's): errors never repeat it. */
function readSecretUrl(name: string, value: string | null): string | null {
  if (value === null) return null;
  const url = urlOrNull(value);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new ConfigError(`${name} must be an http(s) URL, such as the incoming-webhook address of a chat channel.`);
  // fetch refuses URLs with credentials in them; every notification would fail with "could not connect".
  if (url.username !== '' || url.password !== '') throw new ConfigError(`${name} must not contain a user name or password; use the webhook address the chat tool gives (its secret is in the path).`);
  return url.toString();
}

function readConsoleUrl(value: string | null): string | null {
  if (value === null) return null;
  const url = urlOrNull(value);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError(`MOLLIE_MCP_CONSOLE_URL must be the console's address as people open it, such as https://mcp.example.com/console; got "${value.slice(0, 200)}".`);
  }
  return url.toString().replace(/\/$/, '');
}

function readSwitch(name: string, value: string | null, fallback: boolean): boolean {
  if (value === null) return fallback;
  if (value !== '0' && value !== '1') throw new ConfigError(`${name} must be 1 or 0; got "${value}".`);
  return value === '1';
}

function readDatabaseUrl(value: string | null, dbPath: string | null): DatabaseUrl | null {
  if (value === null) return null;
  if (dbPath !== null) {
    throw new ConfigError('Both MOLLIE_MCP_DATABASE_URL (or --database-url) and MOLLIE_MCP_DB (or --db) are set, and the server keeps one store: unset the path to use the shared PostgreSQL store, or the URL to use the SQLite file.');
  }
  try {
    return parseDatabaseUrl(value);
  } catch (error) {
    if (error instanceof DatabaseUrlError) throw new ConfigError(error.message);
    throw error;
  }
}

export function readConfig(env: Env, flags: ConfigFlags = {}, cwd: string = process.cwd()): Config {
  const logLevel = nonEmpty(env.LOG_LEVEL) ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}; got "${logLevel}".`);
  const dbFromEnv = flags.db ?? nonEmpty(env.MOLLIE_MCP_DB);
  const simulator = flags.simulator === true || env.MOLLIE_MCP_SIMULATOR === '1';
  const databaseUrl = readDatabaseUrl(nonEmpty(flags.databaseUrl) ?? nonEmpty(env.MOLLIE_MCP_DATABASE_URL), dbFromEnv);
  return {
    policiesDir: resolve(cwd, flags.policies ?? nonEmpty(env.MOLLIE_MCP_POLICIES) ?? 'policies'),
    dbPath: dbFromEnv === null ? defaultDatabasePath(env, simulator) : dbFromEnv === ':memory:' ? dbFromEnv : resolve(cwd, dbFromEnv),
    dbPathIsDefault: dbFromEnv === null,
    databaseUrl,
    agent: nonEmpty(env.MOLLIE_MCP_AGENT),
    token: nonEmpty(env.MOLLIE_MCP_TOKEN),
    redirectUrl: checkUrl('MOLLIE_MCP_REDIRECT_URL', nonEmpty(env.MOLLIE_MCP_REDIRECT_URL), { httpsOnly: false, publicHost: false }),
    webhookUrl: checkUrl('MOLLIE_MCP_WEBHOOK_URL', nonEmpty(env.MOLLIE_MCP_WEBHOOK_URL), { httpsOnly: true, publicHost: true }),
    linkValidDays: readLinkValidDays(nonEmpty(env.MOLLIE_MCP_LINK_VALID_DAYS)),
    checkpoints: readCheckpoints(env, cwd),
    simulator,
    checkoutPort: readCheckoutPort(nonEmpty(env.MOLLIE_MCP_CHECKOUT_PORT)),
    logLevel,
    http: {
      host: flags.host ?? '127.0.0.1',
      port: readPort(flags.port ?? null),
      allowedOrigins: readOrigins(nonEmpty(env.MOLLIE_MCP_ALLOWED_ORIGINS)),
      sessionIdleMs: readSeconds('MOLLIE_MCP_SESSION_IDLE_SECONDS', nonEmpty(env.MOLLIE_MCP_SESSION_IDLE_SECONDS), 30 * 60),
      sessionsPerAgent: readWholeNumber('MOLLIE_MCP_SESSIONS_PER_AGENT', nonEmpty(env.MOLLIE_MCP_SESSIONS_PER_AGENT), 32, 1000),
    },
    approvalTtlMs: readSeconds('MOLLIE_MCP_APPROVAL_TTL_SECONDS', nonEmpty(env.MOLLIE_MCP_APPROVAL_TTL_SECONDS), 15 * 60),
    confirmTimeoutMs: readSeconds('MOLLIE_MCP_CONFIRM_TIMEOUT_SECONDS', nonEmpty(env.MOLLIE_MCP_CONFIRM_TIMEOUT_SECONDS), 2 * 60),
    confirmInClient: readSwitch('MOLLIE_MCP_CONFIRM_IN_CLIENT', nonEmpty(env.MOLLIE_MCP_CONFIRM_IN_CLIENT), true),
    peopleFile: nonEmpty(flags.people) !== null || nonEmpty(env.MOLLIE_MCP_PEOPLE) !== null ? resolve(cwd, (nonEmpty(flags.people) ?? nonEmpty(env.MOLLIE_MCP_PEOPLE))!) : null,
    approvalNotifyUrl: readSecretUrl('MOLLIE_MCP_APPROVAL_NOTIFY_URL', nonEmpty(env.MOLLIE_MCP_APPROVAL_NOTIFY_URL)),
    consoleUrl: readConsoleUrl(nonEmpty(env.MOLLIE_MCP_CONSOLE_URL)),
    consoleIdleMs: readSeconds('MOLLIE_MCP_CONSOLE_IDLE_SECONDS', nonEmpty(env.MOLLIE_MCP_CONSOLE_IDLE_SECONDS), 15 * 60),
    refusedCallsPerMinute: readWholeNumber('MOLLIE_MCP_REFUSED_CALLS_PER_MINUTE', nonEmpty(env.MOLLIE_MCP_REFUSED_CALLS_PER_MINUTE), 60, 1_000_000),
  };
}
