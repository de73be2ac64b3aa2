/** Invoice pay links over stdio: the shared scenarios (test/support/link-scenarios.ts) against the built server. */
import { describeLinkScenarios } from '../support/link-scenarios.js';
import { mollieDoubleEnv, spawnServer } from '../support/stdio-server.js';

describeLinkScenarios('stdio', async ({ double, workspace }) => {
  const server = await spawnServer({ agent: 'clerk', workspace, env: mollieDoubleEnv(double.url) });
  return { call: server.call, close: () => server.close() };
});
