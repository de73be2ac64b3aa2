import { it } from 'vitest';
import { POLICY } from '../support/engine-world.js';
import { spawnHttpServer, rawRequest } from '../support/http-server.js';
import { createWorkspace } from '../support/stdio-server.js';
it('debug', async () => {
  const workspace = createWorkspace({ clerk: POLICY('clerk') });
  const server = await spawnHttpServer({ workspace, env: { MOLLIE_MCP_WEBHOOK_URL: 'https://hooks.example.com/webhooks/mollie' } });
  const r = await rawRequest(`${server.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'id=tr_doesNotExist99' });
  console.log(r.status, r.body);
  await server.stop();
  console.log(server.stderr().split('\n').filter((l) => /"level":(40|50)/.test(l)).join('\n').slice(0, 3000));
  workspace.remove();
});
