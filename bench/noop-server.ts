import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { Server } from '@modelcontextprotocol/server';
import { TOOLS } from '../tools/index.js';
import { describeTool } from '../src/server.js';

const result = {
  payment_id: 'tr_noop1234',
  payment_link_id: null,
  kind: 'checkout',
  invoice_id: 'BENCH-1',
  status: 'open',
  status_label: 'Open: waiting for the customer to pay; the checkout expires on 22 Nov 2026, 03:00 UTC',
  is_final: false,
  amount: { value: '10.00', currency: 'EUR' },
  amount_refunded: null,
  amount_remaining: null,
  paid_at: null,
  created_at: '2026-11-22T02:45:00.000Z',
  expires_at: '2026-11-22T03:00:00.000Z',
  checkout_url: 'https://checkout.simulator.invalid/pay/tr_noop1234',
  method: null,
  refunds: [],
  payments: [{ kind: 'checkout', payment_link_id: null, payment_id: 'tr_noop1234', status: 'open', amount: { value: '10.00', currency: 'EUR' }, created_at: '2026-11-22T02:45:00.000Z', paid_at: null }],
  audit_id: '00000000-0000-4000-8000-000000000000',
};

const server = new Server({ name: 'noop', version: '1.0.0' }, { capabilities: { tools: { listChanged: false } } });
server.setRequestHandler('tools/list', () => ({ tools: TOOLS.map(describeTool) }));
server.setRequestHandler('tools/call', () => ({
  content: [{ type: 'text', text: `Read the status of payment tr_noop1234.\n${JSON.stringify(result)}` }],
  structuredContent: result,
  isError: false,
}));
const database = process.env.NOOP_OPEN_DATABASE;
// Imported only then, so the plain no-op does not load better-sqlite3.
const ready = database ? import('../src/database.js').then(({ openDatabase }) => void openDatabase(database)) : Promise.resolve();
void ready.then(() => server.connect(new StdioServerTransport()));
