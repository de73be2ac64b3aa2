/**
 * What the real adapter puts on the wire, and how it behaves when Mollie misbehaves, checked against what the https
 * double of Mollie's API received.
 */
import { VERSION } from '../../src/version.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MollieError } from '../../src/mollie/errors.js';
import { createMollieApiPort, type MollieApiPortOptions } from '../../src/mollie/mollie-api-port.js';
import type { MolliePort } from '../../src/mollie/port.js';
import { startMollieApiDouble, trustTestCertificates, type MollieApiDouble } from '../support/mollie-api-double.js';
import { request as httpsRequest } from 'node:https';
import { invoiceLink, invoicePayment, rejection as expectRejection } from './port-contract.js';

trustTestCertificates();

const API_KEY = 'test_wireSuiteKeyAbCdEfGh0123456789';
const FAST_RETRIES = { maxRetries: 3, baseDelayMs: 20, maxDelayMs: 100, retryAfterCeilingMs: 5_000 };

let double: MollieApiDouble;
beforeEach(async () => {
  double = await startMollieApiDouble();
});
afterEach(async () => {
  await double.close();
});

function adapter(options: MollieApiPortOptions = {}): MolliePort {
  return createMollieApiPort({ kind: 'api_key', apiKey: API_KEY, mode: 'test', apiEndpoint: double.url }, { retryPolicy: FAST_RETRIES, ...options });
}

/** The call must fail; whatever went wrong, the key never travels in what we report. */
async function rejection(promise: Promise<unknown>): Promise<MollieError> {
  const error = await expectRejection(promise);
  expect(JSON.stringify({ message: error.message, ...error.toJSON() })).not.toContain(API_KEY);
  return error;
}

const created = (path = /^\/v2\/payments$/) => double.requests.filter((request) => request.method === 'POST' && path.test(request.path));

describe('the request the adapter sends', () => {
  it('creates a payment with Mollie amount strings, our Idempotency-Key in the header and the key as bearer token', async () => {
    const port = adapter();
    await port.createPayment(invoicePayment({ locale: 'nl_NL' }), { idempotencyKey: 'invoice-2026-114-key' });
    expect(double.requests).toHaveLength(1);
    const [request] = double.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/v2/payments' });
    expect(request!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request!.headers['idempotency-key']).toBe('invoice-2026-114-key');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['user-agent']).toContain(`MollieInvoiceMcp/${VERSION}`);
    expect(request!.body).toEqual({
      amount: { value: '120.50', currency: 'EUR' },
      description: 'Invoice 2026-114',
      redirectUrl: 'https://pay.example.com/thanks/2026-114',
      webhookUrl: 'https://hooks.example.com/webhooks/mollie',
      locale: 'nl_NL',
      metadata: { invoice_id: '2026-114' },
    });
  });

  it('creates a refund on the payment path with its own key', async () => {
    const port = adapter();
    const payment = await port.createPayment(invoicePayment(), { idempotencyKey: 'k-pay' });
    double.simulator.simulate(payment.id, 'paid');
    await port.createRefund(payment.id, { amount: { value: '20.00', currency: 'EUR' }, description: 'Goodwill' }, { idempotencyKey: 'k-refund' });
    const [request] = created(/\/refunds$/);
    expect(request).toMatchObject({ path: `/v2/payments/${payment.id}/refunds`, body: { amount: { value: '20.00', currency: 'EUR' }, description: 'Goodwill' } });
    expect(request!.headers['idempotency-key']).toBe('k-refund');
  });

  it('with an organization access token, names the profile and test mode', async () => {
    const port = createMollieApiPort(
      { kind: 'access_token', accessToken: 'access_orgToken0123456789', profileId: 'pfl_QkEhN94Ba', mode: 'test', apiEndpoint: double.url },
      { retryPolicy: FAST_RETRIES },
    );
    await port.createPayment(invoicePayment(), { idempotencyKey: 'k-org' });
    expect(double.requests[0]!.headers.authorization).toBe('Bearer access_orgToken0123456789');
    expect(double.requests[0]!.body).toMatchObject({ profileId: 'pfl_QkEhN94Ba', testmode: true });
  });

  it('refuses a malformed payment id without sending anything', async () => {
    const error = await rejection(adapter().getPayment('tr_x/../../refunds'));
    expect(error.code).toBe('not_found');
    expect(double.requests).toHaveLength(0);
  });
});

/** A request straight to the double, as any HTTP client would send it: what Mollie itself accepts or refuses. */
function raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(path, double.url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, rejectUnauthorized: false, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('payment links on the wire', () => {
  it('creates a link with POST /v2/payment-links: amount, description, expiry and URLs, single-use, our Idempotency-Key', async () => {
    const link = await adapter().createPaymentLink(invoiceLink(), { idempotencyKey: 'link-key-2026-114' });
    const [request] = created(/^\/v2\/payment-links$/);
    expect(request!.headers['idempotency-key']).toBe('link-key-2026-114');
    expect(request!.body).toEqual({
      amount: { value: '120.50', currency: 'EUR' },
      description: 'Invoice 2026-114',
      expiresAt: '2026-12-21T23:59:59.000Z',
      redirectUrl: 'https://pay.example.com/thanks/2026-114',
      webhookUrl: 'https://hooks.example.com/webhooks/mollie',
    });
    // The URL is whatever Mollie's _links.paymentLink says, not a host of our own choosing.
    expect(link.url).toBe((await double.simulator.getPaymentLink(link.id)).url);
  });

  it('archives with PATCH archived: true and nothing else, and lists payments on the link\'s own path', async () => {
    const port = adapter();
    const link = await port.createPaymentLink(invoiceLink(), { idempotencyKey: 'link-archive' });
    double.simulator.payThroughLink(link.id, 'failed');
    expect(await port.listPaymentLinkPayments(link.id)).toHaveLength(1);
    await port.archivePaymentLink(link.id);
    const patches = double.requests.filter((request) => request.method === 'PATCH');
    expect(patches.map((request) => [request.path, request.body])).toEqual([[`/v2/payment-links/${link.id}`, { archived: true }]]);
    expect(double.requests.some((request) => request.method === 'GET' && request.path === `/v2/payment-links/${link.id}/payments`)).toBe(true);
  });

  it('is refused by Mollie for what a link cannot have: a changed amount or expiry, metadata, a past expiry', async () => {
    const link = await adapter().createPaymentLink(invoiceLink(), { idempotencyKey: 'link-refusals' });
    for (const field of ['amount', 'expiresAt', 'webhookUrl', 'redirectUrl']) {
      const answer = await raw('PATCH', `payment-links/${link.id}`, { [field]: field === 'amount' ? { value: '1.00', currency: 'EUR' } : 'https://example.com/x' });
      expect(answer).toMatchObject({ status: 422, body: { status: 422, title: 'Unprocessable Entity', field } });
    }
    expect(await raw('PATCH', `payment-links/${link.id}`, {})).toMatchObject({ status: 422 });
    expect(await raw('POST', 'payment-links', { ...invoiceLink(), metadata: { invoice_id: '2026-114' } })).toMatchObject({ status: 422, body: { field: 'metadata' } });
    expect(await raw('POST', 'payment-links', { ...invoiceLink(), expiresAt: '2001-01-01T00:00:00Z' })).toMatchObject({ status: 422, body: { field: 'expiresAt' } });
    expect((await double.simulator.getPaymentLink(link.id)).amount).toEqual({ value: '120.50', currency: 'EUR' });
  });

  it('deletes a link only before any payment, as Mollie does', async () => {
    const port = adapter();
    const unused = await port.createPaymentLink(invoiceLink(), { idempotencyKey: 'link-delete-1' });
    expect((await raw('DELETE', `payment-links/${unused.id}`)).status).toBe(204);
    expect((await rejection(port.getPaymentLink(unused.id))).code).toBe('not_found');
    const used = await port.createPaymentLink(invoiceLink(), { idempotencyKey: 'link-delete-2' });
    double.simulator.payThroughLink(used.id, 'canceled');
    expect(await raw('DELETE', `payment-links/${used.id}`)).toMatchObject({ status: 422, body: { detail: 'Payment link cannot be deleted.' } });
  });

  it('refuses a malformed link id without sending anything', async () => {
    expect((await rejection(adapter().getPaymentLink('pl_x/../../payments'))).code).toBe('not_found');
    expect(double.requests).toHaveLength(0);
  });
});

describe('when Mollie is busy or failing', () => {
  it('waits out a 429 for the seconds Retry-After asks, then retries with the same Idempotency-Key', async () => {
    double.inject({ method: 'POST', fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    const started = Date.now();
    const payment = await adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-429' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(payment.status).toBe('open');
    expect(created().map((request) => request.headers['idempotency-key'])).toEqual(['k-429', 'k-429']);
  });

  it('does not sit out a Retry-After beyond its ceiling: it reports rate_limited with the wait', async () => {
    double.inject({ fault: { kind: 'status', status: 429, headers: { 'retry-after': '120' } } });
    const error = await rejection(adapter().getPayment('tr_WDqYK6vllg'));
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterSeconds: 120 });
    expect(double.requests).toHaveLength(1);
  });

  it('gives up on a 429 after three retries', async () => {
    double.inject({ fault: { kind: 'status', status: 429 }, times: 10 });
    const error = await rejection(adapter().getPayment('tr_WDqYK6vllg'));
    expect(error.code).toBe('rate_limited');
    expect(double.requests).toHaveLength(4);
  });

  it('retries a 503 with the same Idempotency-Key, and one payment exists afterwards', async () => {
    double.inject({ method: 'POST', fault: { kind: 'status', status: 503 } });
    const payment = await adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-503' });
    expect(created().map((request) => [request.fault, request.headers['idempotency-key']])).toEqual([
      ['status', 'k-503'],
      [null, 'k-503'],
    ]);
    expect((await double.simulator.getPayment(payment.id)).status).toBe('open');
  });

  it('reports a 503 that does not go away as mollie_unavailable, retryable, with the outcome unknown', async () => {
    double.inject({ method: 'POST', fault: { kind: 'status', status: 503 }, times: 10 });
    const error = await rejection(adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-503-x' }));
    expect(error).toMatchObject({ code: 'mollie_unavailable', retryable: true, effect: 'unknown' });
    const keys = created().map((request) => request.headers['idempotency-key']);
    // @mollie/api-client makes three attempts on a 5xx; the adapter adds none, so the deadline holds.
    expect(keys).toEqual(['k-503-x', 'k-503-x', 'k-503-x']);
  });

  it("maps Mollie's 422 to mollie_rejected with its status, title, detail and field", async () => {
    const error = await rejection(adapter().createPayment(invoicePayment({ amount: { value: '10.5', currency: 'EUR' } }), { idempotencyKey: 'k-422' }));
    expect(error).toMatchObject({ code: 'mollie_rejected', retryable: false, effect: 'none' });
    expect(error.mollie).toEqual({
      status: 422,
      title: 'Unprocessable Entity',
      detail: 'The amount contains an invalid value: EUR needs exactly 2 decimals.',
      field: 'amount.value',
    });
    expect(created()).toHaveLength(1);
  });

  it('maps a 401 to a message about the credential, without the credential', async () => {
    const port = createMollieApiPort({ kind: 'api_key', apiKey: 'test_has-a-dash', mode: 'test', apiEndpoint: double.url }, { retryPolicy: FAST_RETRIES });
    const error = await rejection(port.getPayment('tr_WDqYK6vllg'));
    expect(error).toMatchObject({ code: 'mollie_rejected', retryable: false });
    expect(error.message).toMatch(/MOLLIE_API_KEY/);
    expect(error.message).not.toContain('has-a-dash');
  });

  it('retries a connection reset before the request was processed, and succeeds', async () => {
    const port = adapter();
    const payment = await port.createPayment(invoicePayment(), { idempotencyKey: 'k-get' });
    double.inject({ method: 'GET', fault: { kind: 'reset-before' } });
    expect((await port.getPayment(payment.id)).id).toBe(payment.id);
    expect(double.requests.filter((request) => request.method === 'GET').map((request) => request.fault)).toEqual(['reset-before', null]);
  });

  it('after a reset that came once Mollie had made the payment, retries with the same key and gets that payment back', async () => {
    double.inject({ method: 'POST', fault: { kind: 'reset-after' } });
    const payment = await adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-reset-after' });
    expect(created().map((request) => request.headers['idempotency-key'])).toEqual(['k-reset-after', 'k-reset-after']);
    // Mollie replayed the first answer: the payment made before the reset is the one we got.
    await expect(double.simulator.getPayment(payment.id)).resolves.toMatchObject({ status: 'open' });
    const again = await adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-reset-after' });
    expect(again.id).toBe(payment.id);
  });

  it('keeps a write unknown once any attempt may have reached Mollie, even if a later attempt is refused outright', async () => {
    double.inject({ method: 'POST', fault: { kind: 'reset-after' } });
    double.inject({ method: 'POST', fault: { kind: 'status', status: 429, headers: { 'retry-after': '120' } } });
    const error = await rejection(adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-sticky' }));
    expect(error).toMatchObject({ code: 'rate_limited', effect: 'unknown' });
    // And indeed Mollie made the payment on the first attempt.
    expect(created().map((request) => request.fault)).toEqual(['reset-after', 'status']);
  });

  it('stops waiting at the deadline and reports a write as unknown, not failed', async () => {
    double.inject({ method: 'POST', fault: { kind: 'delay', ms: 3_000 } });
    const error = await rejection(adapter({ timeoutMs: 300 }).createPayment(invoicePayment(), { idempotencyKey: 'k-slow' }));
    expect(error).toMatchObject({ code: 'mollie_unavailable', retryable: true, effect: 'unknown' });
    expect(error.message).toMatch(/did not answer .* within 0.3 s/);
    // We gave up before Mollie answered; the payment may well exist: that is what "unknown" means.
    expect(created()[0]!.answered).toBe(false);
  });

  it('a slow answer within the deadline is simply awaited', async () => {
    double.inject({ method: 'GET', fault: { kind: 'delay', ms: 200 } });
    const port = adapter({ timeoutMs: 5_000 });
    const payment = await port.createPayment(invoicePayment(), { idempotencyKey: 'k-slowish' });
    expect((await port.getPayment(payment.id)).id).toBe(payment.id);
  });

  it('treats a 200 whose body is not JSON as unknown, retries it, and recovers', async () => {
    double.inject({ method: 'POST', fault: { kind: 'non-json', status: 200 } });
    const payment = await adapter().createPayment(invoicePayment(), { idempotencyKey: 'k-html' });
    expect(payment.status).toBe('open');
    expect(created().map((request) => request.headers['idempotency-key'])).toEqual(['k-html', 'k-html']);
  });

  it('reports an HTML 502 page after the client gave up as mollie_unavailable', async () => {
    double.inject({ method: 'GET', fault: { kind: 'non-json', status: 502 }, times: 10 });
    const error = await rejection(adapter().getPayment('tr_WDqYK6vllg'));
    expect(error).toMatchObject({ code: 'mollie_unavailable', retryable: true, effect: 'none' });
  });

  it('cannot connect at all: a write is reported as certainly not made, after retries', async () => {
    const closed = double.url;
    await double.close();
    const port = createMollieApiPort({ kind: 'api_key', apiKey: API_KEY, mode: 'test', apiEndpoint: closed }, { retryPolicy: FAST_RETRIES });
    const error = await rejection(port.createPayment(invoicePayment(), { idempotencyKey: 'k-refused' }));
    expect(error).toMatchObject({ code: 'mollie_unavailable', retryable: true, effect: 'none' });
    expect(error.message).toMatch(/ECONNREFUSED/);
    double = await startMollieApiDouble();
  });
});
