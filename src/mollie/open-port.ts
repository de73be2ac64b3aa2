/**
 * Picks the Mollie port for this process: the offline simulator when asked for, otherwise the real adapter with the
 * credential from the environment. No credential and no simulator is an error that says what to set.
 */
import type { Logger } from 'pino';
import { CredentialError, readMollieCredentials } from './credentials.js';
import { createMollieApiPort, type MollieApiPortOptions } from './mollie-api-port.js';
import type { MolliePort } from './port.js';
import { MollieSimulator, type SimulatorOptions } from './simulator.js';

export interface OpenPortOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** `--simulator` on the command line; MOLLIE_MCP_SIMULATOR=1 does the same. */
  simulator?: boolean;
  simulatorOptions?: SimulatorOptions;
  adapterOptions?: MollieApiPortOptions;
  logger?: Logger;
}

export function openMolliePort(options: OpenPortOptions): MolliePort {
  const { env } = options;
  if (options.simulator || env.MOLLIE_MCP_SIMULATOR === '1') {
    options.logger?.info('Using the offline Mollie simulator: no payment reaches Mollie.');
    return new MollieSimulator(options.simulatorOptions);
  }
  const credentials = readMollieCredentials(env);
  if (!credentials) {
    throw new CredentialError(
      'No Mollie credential: set MOLLIE_API_KEY (test_... or live_...), or MOLLIE_ACCESS_TOKEN with MOLLIE_PROFILE_ID, or run with --simulator (MOLLIE_MCP_SIMULATOR=1) to try it offline.',
    );
  }
  options.logger?.info({ mode: credentials.mode, credential: credentials.kind, endpoint: credentials.apiEndpoint }, 'Using Mollie');
  return createMollieApiPort(credentials, { ...(options.logger ? { logger: options.logger } : {}), ...options.adapterOptions });
}
