/** Invoice pay links over Streamable HTTP: the shared scenarios (test/support/link-scenarios.ts) against the built server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLERK_POLICY, describeLinkScenarios, sentDuring } from '../support/link-scenarios.js';
import { newToken, rawRequest, spawnHttpServer, type HttpClientHandle, type HttpServerHandle } from '../support/http-server.js';
import { startMollieApiDouble } from '../support/mollie-api-double.js';
import { createWorkspace, mollieDoubleEnv, type Workspace } from '../support/stdio-server.js';
import { openStoreForTest } from '../support/store-under-test.js';

describeLinkScenarios('HTTP', async ({ double, workspace }) => {
  const token = newToken();
  workspace.writePolicy('clerk', CLERK_POLICY(`token_sha256: ${token.sha256}\n`));
  const server = await spawnHttpServer({ workspace, env: mollieDoubleEnv(double.url) });
  const clerk = await server.connect(token.token);
  return {
    call: clerk.call,
    close: async () => {
      await clerk.close();
      await server.stop();
    },
  };
});

describe('Mollie webhooks for payment links', () => {
  const WEBHOOK_URL = 'https://hooks.example.com/webhooks/mollie';
  let double: Awaited<ReturnType<typeof startMollieApiDouble>>;
  let workspace: Workspace;
  let server: HttpServerHandle;
  let clerk: HttpClientHandle;

  beforeAll(async () => {
    const token = newToken();
    double = await startMollieApiDouble();
    workspace = createWorkspace({ clerk: CLERK_POLICY(`token_sha256: ${token.sha256}\n`) });
    server = await spawnHttpServer({ workspace, env: { ...mollieDoubleEnv(double.url), MOLLIE_MCP_WEBHOOK_URL: WEBHOOK_URL } });
    clerk = await server.connect(token.token);
  });

  afterAll(async () => {
    await clerk?.close();
    await server?.stop();
    await double?.close();
    workspace?.remove();
  });

  const hook = (id: string) =>
    rawRequest(`${server.url}/webhooks/mollie`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Host: 'hooks.example.com' }, body: `id=${id}` });

  it("matches a link's payment to its link and invoice by asking Mollie, never from the request", async () => {
    const made = await clerk.call('create_invoice_payment', { invoice_id: 'HOOK-PL', amount: '33.00' });
    const linkId = String(made.structuredContent.payment_link_id);
    const creation = double.requests.find((request) => request.method === 'POST' && (request.body as { description?: string }).description === 'Invoice HOOK-PL');
    expect(creation?.body).toMatchObject({ webhookUrl: WEBHOOK_URL });
    // A link made elsewhere for the same amount: a candidate the server must rule out by asking Mollie.
    await double.simulator.createPaymentLink({ amount: { value: '33.00', currency: 'EUR' }, description: 'elsewhere' }, { idempotencyKey: 'elsewhere-33' });

    const paid = double.simulator.payThroughLink(linkId, 'paid');
    const { result: answer, sent } = await sentDuring(double, () => hook(paid.id));
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 200, body: '' });
    expect(sent.every((request) => request.method === 'GET')).toBe(true);
    expect(sent[0]!.path).toBe(`/v2/payments/${paid.id}`);
    expect(sent.some((request) => request.path === `/v2/payment-links/${linkId}/payments`)).toBe(true);

    const db = openStoreForTest(workspace);
    const rows = db.prepare("SELECT kind, decision, outcome, payment_id, invoice_id, action FROM audit_log WHERE agent = 'mollie-webhook' ORDER BY seq").all() as Record<string, unknown>[];
    db.close();
    expect(rows).toEqual([
      expect.objectContaining({ kind: 'decision', decision: 'allowed', payment_id: paid.id }),
      expect.objectContaining({ kind: 'outcome', outcome: 'ok', payment_id: linkId, invoice_id: 'HOOK-PL', action: `payment ${paid.id} through payment link ${linkId} (now paid) of invoice HOOK-PL (33.00 EUR) is paid` }),
    ]);
    const status = await clerk.call('get_payment_status', { invoice_id: 'HOOK-PL' });
    expect(status.structuredContent).toMatchObject({ status: 'paid', payment_id: paid.id, payment_link_id: linkId });
    // The link's story has its creation and the webhook; the payment's has the webhook and the status read.
    const byLink = await clerk.call('list_logs', { payment_link_id: linkId });
    expect((byLink.structuredContent.entries as { agent: string; tool: string | null }[]).map((entry) => entry.tool ?? entry.agent)).toEqual(['mollie-webhook', 'create_invoice_payment']);
    const byPayment = await clerk.call('list_logs', { payment_id: paid.id });
    expect((byPayment.structuredContent.entries as { agent: string; tool: string | null }[]).map((entry) => entry.tool ?? entry.agent)).toEqual(['get_payment_status', 'mollie-webhook']);
  });

  it("answers a webhook about a payment through a link this server did not make like an unknown one, changing nothing", async () => {
    // This server has a link taking payments (of another amount), so the id could be a payment through one of its
    // links: Mollie is asked about the payment, and none of its links of that amount has it.
    await clerk.call('create_invoice_payment', { invoice_id: 'HOOK-OTHER', amount: '12.00' });
    const foreign = await double.simulator.createPaymentLink({ amount: { value: '7.77', currency: 'EUR' }, description: 'not ours' }, { idempotencyKey: 'foreign-777' });
    const paid = double.simulator.payThroughLink(foreign.id, 'paid');
    const { result: answer, sent } = await sentDuring(double, () => hook(paid.id));
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 200, body: '' });
    expect(sent.map((request) => `${request.method} ${request.path}`)).toEqual([`GET /v2/payments/${paid.id}`]);
    const db = openStoreForTest(workspace);
    const outcome = db.prepare("SELECT outcome, error_code, error_message FROM audit_log WHERE agent = 'mollie-webhook' AND kind = 'outcome' ORDER BY seq DESC LIMIT 1").get() as Record<string, unknown>;
    const recorded = db.prepare('SELECT count(*) AS n FROM payments WHERE payment_id = ?').get(paid.id) as { n: number };
    db.close();
    expect(outcome).toMatchObject({ outcome: 'error', error_code: 'not_found' });
    expect(String(outcome.error_message)).toMatch(/not made by this server, nor through one of its payment links/);
    expect(recorded.n).toBe(0);
  });
});
