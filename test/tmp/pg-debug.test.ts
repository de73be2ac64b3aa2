import { it } from 'vitest';
import { POLICY } from '../support/engine-world.js';
import { createWorkspace, spawnServer } from '../support/stdio-server.js';
it('debug', async () => {
  const workspace = createWorkspace({ clerk: POLICY('clerk') });
  const server = await spawnServer({ agent: 'clerk', workspace });
  const r = await server.call('create_invoice_payment', { invoice_id: 'INV-1', amount: '100.00' });
  const l = await server.call('list_logs', { payment_link_id: r.structuredContent.payment_link_id });
  console.log(JSON.stringify(l.structuredContent).slice(0, 500));
  const l2 = await server.call('list_logs', { limit: 2 });
  console.log(JSON.stringify(l2.structuredContent).slice(0, 500));
  await server.close();
  console.log(server.stderr().split('\n').filter((l) => /"level":(40|50)/.test(l)).join('\n').slice(0, 3000));
  workspace.remove();
});
