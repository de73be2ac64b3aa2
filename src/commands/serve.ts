/** `serve`: the MCP server. Refuses to start on a bad policy, a missing credential or a bad setting, saying why. */
import type { Logger } from 'pino';
import { ConfigError, type Config } from '../config.js';
import { openEngine, type Engine, type EngineOptions } from '../engine.js';
import { createLogger } from '../log.js';
import { UsageError, type CommandOutput } from './output.js';

/** After start, when the simulator's checkout page starts listening over stdio: after the client's first requests. */
const CHECKOUT_PAGE_DELAY_MS = 50;

/** How long calls in flight may take to finish after SIGTERM. */
const SHUTDOWN_GRACE_MS = 15_000;

export async function serve(config: Config, transport: string, env: Readonly<Record<string, string | undefined>>, _io: CommandOutput, options: { stateless?: boolean } = {}): Promise<number> {
  if (transport !== 'stdio' && transport !== 'http') throw new UsageError(`--transport must be stdio or http; got "${transport}".`);
  const logger = createLogger(config.logLevel);
  // The simulator's checkout links point at this server, whose port is known only once it listens.
  let checkoutBase = '';
  const checkpoints = config.checkpoints === null ? undefined : await checkpointsFor(config.checkpoints, logger);
  const engine = openEngine(config, {
    logger,
    env,
    serving: true,
    ...(checkpoints ? { checkpoints } : {}),
    simulatorOptions: { checkoutBaseUrl: () => checkoutBase },
  });
  logger.info(
    { database: config.databaseUrl?.described ?? config.dbPath, policies: config.policiesDir, agents: [...engine.policies.agents.keys()], mollie: engine.mollie.kind, mode: engine.mollie.mode },
    config.databaseUrl !== null ? 'Audit log and payment records on PostgreSQL' : config.dbPathIsDefault ? 'Audit log and payment records in the default database (set MOLLIE_MCP_DB to choose)' : 'Audit log and payment records database',
  );
  // In the background, so the server answers at once: until an interrupted call is settled its reservation still
  // counts towards the budgets, which errs on the safe side.
  void engine.reconcile().catch((error: unknown) => logger.warn({ err: error }, 'Reconciling interrupted calls stopped early; the rest are settled at the next start'));
  if (transport === 'http') {
    warnForHttp(config, engine, logger);
    // Each transport's module is imported only when it is used: the HTTP one pulls the SDK's Streamable HTTP
    // transport, which a stdio server never needs.
    const { startHttpServer } = await import('../transports/http.js');
    let service;
    try {
      service = await startHttpServer(engine, { ...config.http, webhookUrl: config.webhookUrl, shutdownGraceMs: SHUTDOWN_GRACE_MS, consoleIdleMs: config.consoleIdleMs, consoleUrl: config.consoleUrl, stateless: options.stateless === true }, logger);
    } catch (error) {
      engine.close();
      const code = (error as NodeJS.ErrnoException).code;
      throw new ConfigError(code === 'EADDRINUSE' ? `${config.http.host}:${config.http.port} is already in use; choose another --port.` : `cannot listen on ${config.http.host}:${config.http.port}: ${(error as Error).message}`);
    }
    checkoutBase = `${service.url}/checkout/`;
    engine.setConsoleUrl(`${service.url}/console`);
    logger.info(
      { url: `${service.url}/mcp`, sessions: options.stateless === true ? 'none (stateless: approvals out of band)' : 'on', webhooks: config.webhookUrl ?? 'off (MOLLIE_MCP_WEBHOOK_URL not set)', console: engine.people ? (config.consoleUrl ?? `${service.url}/console`) : 'off (MOLLIE_MCP_PEOPLE not set)' },
      'Listening',
    );
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => void service.close(signal).finally(resolve);
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    return 0;
  }
  if (config.agent === null) {
    logger.warn('MOLLIE_MCP_AGENT is not set: this server lists no tools and denies every call.');
  } else if (!engine.policies.agents.has(config.agent)) {
    logger.warn({ agent: config.agent }, 'This agent has no policy file: it sees no tools and every call is denied.');
  } else if (engine.policies.agents.get(config.agent)?.tokenSha256 && config.token === null) {
    logger.warn({ agent: config.agent }, "This agent's policy requires a token and MOLLIE_MCP_TOKEN is not set: every call is denied.");
  }
  // The page (and node:http, which a stdio server needs for nothing else) starts once the protocol is served: a client
  // gets initialize and tools/list answered without waiting for it, and tool calls, whose links name the page, wait
  // until it listens.
  const checkoutPage = new Promise<void>((resolve) => setTimeout(resolve, CHECKOUT_PAGE_DELAY_MS))
    .then(() => startStdioCheckout(engine, config.checkoutPort, logger))
    .then((page) => {
      if (page) checkoutBase = page.baseUrl;
      return page;
    });
  const { serveStdio } = await import('../transports/stdio.js');
  await serveStdio(engine, { agent: config.agent, token: config.token }, logger, checkoutPage);
  await (await checkoutPage)?.close();
  return 0;
}

/**
 * With the simulator, a stdio server also serves its checkout page on loopback, so a person in Claude Desktop can
 * open a checkout_url and pay. Without it the server still works, with links nobody can open, and says so.
 */
async function startStdioCheckout(engine: Engine, port: number, logger: Logger): Promise<{ baseUrl: string; close(): Promise<void> } | null> {
  const { MollieSimulator, SIMULATOR_CHECKOUT_BASE_URL } = await import('../mollie/simulator.js');
  if (!(engine.mollie instanceof MollieSimulator)) return null;
  const [{ startCheckoutServer }, { MollieWebhook }] = await Promise.all([import('../http/checkout-server.js'), import('../webhooks/mollie-webhook.js')]);
  const webhook = new MollieWebhook({ mollie: engine.mollie, payments: engine.payments, audit: engine.audit, logger });
  try {
    const page = await startCheckoutServer({ simulator: engine.mollie, payments: engine.payments, webhook, logger }, port);
    logger.info({ url: `${page.baseUrl}<tr_...|pl_...>` }, 'Simulator checkout page: open a checkout_url in a browser to pay, fail, cancel or let it expire');
    return page;
  } catch (error) {
    logger.warn({ err: error, port }, 'The simulator checkout page could not start; use `simulate pay <id>` to play the customer instead');
    return { baseUrl: SIMULATOR_CHECKOUT_BASE_URL, close: async () => {} };
  }
}

/** Loaded only when configured: a server without checkpoints starts without node:crypto's signing. */
async function checkpointsFor(settings: NonNullable<Config['checkpoints']>, logger: Logger): Promise<NonNullable<EngineOptions['checkpoints']>> {
  const { Checkpointer, CheckpointKeyError, loadSigningKey } = await import('../audit/checkpoints.js');
  let key;
  try {
    key = loadSigningKey(settings.keyPath);
  } catch (error) {
    if (error instanceof CheckpointKeyError) throw new ConfigError(error.message);
    throw error;
  }
  logger.info({ key_id: key.keyId, directory: settings.directory }, 'Signing audit log checkpoints');
  return (db, audit) => {
    const checkpointer = new Checkpointer(db, key, { directory: settings.directory, everyRows: settings.everyRows, everyMs: settings.everyMs, logger });
    audit.onAppend(() => checkpointer.rowAdded());
    return checkpointer;
  };
}

function warnForHttp(config: Config, engine: Engine, logger: Logger): void {
  const tokenless = [...engine.policies.agents.values()].filter((agent) => agent.tokenSha256 === null).map((agent) => agent.agent);
  if (tokenless.length > 0) logger.warn({ agents: tokenless }, 'These agents have no token_sha256 in their policy, so they cannot use this server over HTTP.');
  if (config.agent !== null) logger.warn('MOLLIE_MCP_AGENT is ignored over HTTP: each request names its agent by bearer token.');
  if (!['127.0.0.1', 'localhost', '::1'].includes(config.http.host)) {
    logger.warn({ host: config.http.host }, 'Listening beyond this machine over plain HTTP: bearer tokens cross the network in the clear. Put a TLS-terminating proxy in front.');
  }
}
