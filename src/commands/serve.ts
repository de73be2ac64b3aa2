/** `serve`: the MCP server. Refuses to start on a bad policy, a missing credential or a bad setting, saying why. */
import type { Config } from '../config.js';
import { openEngine } from '../engine.js';
import { createLogger } from '../log.js';
import { serveStdio } from '../transports/stdio.js';
import { UsageError, type CommandOutput } from './output.js';

export async function serve(config: Config, transport: string, env: Readonly<Record<string, string | undefined>>, io: CommandOutput): Promise<number> {
  if (transport === 'http') {
    io.err('The Streamable HTTP transport is not in this version yet; use stdio (the default).');
    return 2;
  }
  if (transport !== 'stdio') throw new UsageError(`--transport must be stdio or http; got "${transport}".`);
  const logger = createLogger(config.logLevel);
  const engine = openEngine(config, { logger, env });
  logger.info(
    { database: config.dbPath, policies: config.policiesDir, agents: [...engine.policies.agents.keys()], mollie: engine.mollie.kind, mode: engine.mollie.mode },
    config.dbPathIsDefault ? 'Audit log and payment records in the default database (set MOLLIE_MCP_DB to choose)' : 'Audit log and payment records database',
  );
  if (config.agent === null) {
    logger.warn('MOLLIE_MCP_AGENT is not set: this server lists no tools and denies every call.');
  } else if (!engine.policies.agents.has(config.agent)) {
    logger.warn({ agent: config.agent }, 'This agent has no policy file: it sees no tools and every call is denied.');
  } else if (engine.policies.agents.get(config.agent)?.tokenSha256 && config.token === null) {
    logger.warn({ agent: config.agent }, "This agent's policy requires a token and MOLLIE_MCP_TOKEN is not set: every call is denied.");
  }
  await serveStdio(engine, { agent: config.agent, token: config.token }, logger);
  return 0;
}
