/**
 * An https test double of Mollie's v2 API for the real adapter: Mollie's paths, JSON (HAL) bodies, problem bodies
 * and status codes, Idempotency-Key replay, with the simulator as its model of Mollie's semantics. It records every
 * request and can inject faults (429, 5xx, resets, slow or non-JSON replies) so tests can assert what Mollie saw.
 *
 * @mollie/api-client verifies TLS against its own CA bundle, so a test using this double must turn verification off
 * in its own process (see `trustTestCertificates`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { MollieError } from '../../src/mollie/errors.js';
import type { Payment, PaymentLink, Refund } from '../../src/mollie/port.js';
import { MollieSimulator, type SimulatorOptions } from '../../src/mollie/simulator.js';

export type Fault =
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** The connection drops before the request is processed: nothing happened at Mollie. */
  | { kind: 'reset-before' }
  /** The request is processed, then the connection drops before the answer: it happened, the client cannot know. */
  | { kind: 'reset-after' }
  /** The request is processed and answered after a delay. */
  | { kind: 'delay'; ms: number }
  /** The request is read but never processed nor answered (lost on Mollie's side): it did not happen. */
  | { kind: 'hang' }
  /** The answer's body is an HTML error page, not JSON. */
  | { kind: 'non-json'; status: number };

export interface FaultRule {
  fault: Fault;
  method?: string;
  path?: RegExp;
  /** How many matching requests get this fault; default 1. */
  times?: number;
  /** Only requests whose body contains this text (an invoice id, say), so cases can run side by side. */
  bodyIncludes?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  fault: Fault['kind'] | null;
  /** Set when an answer was written (false for resets, and for delayed answers still pending). */
  answered: boolean;
}

export interface MollieApiDouble {
  /** The API base, for MOLLIE_API_ENDPOINT / apiEndpoint, e.g. https://127.0.0.1:43123/v2/ */
  url: string;
  simulator: MollieSimulator;
  requests: RecordedRequest[];
  /** Adds a fault rule; the returned function removes what is left of it. */
  inject(rule: FaultRule): () => void;
  close(): Promise<void>;
}

const DOCS = { href: 'https://docs.mollie.com/overview/handling-errors', type: 'text/html' };
const EPOCH = '1970-01-01T00:00:00Z';

/** Lets this test process accept the double's self-signed certificate. */
export function trustTestCertificates(): void {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
}

export async function startMollieApiDouble(options: SimulatorOptions = {}): Promise<MollieApiDouble> {
  const { key, cert } = selfSignedCertificate();
  const simulator = new MollieSimulator({ requireRedirectUrl: true, ...options });
  const requests: RecordedRequest[] = [];
  const rules: Array<FaultRule & { remaining: number }> = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server: Server = createServer({ key, cert }, (request, response) => {
    void handle(request, response);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  let base = '';

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', 'https://double.invalid').pathname;
    const record: RecordedRequest = { method, path, headers: { ...request.headers }, body: undefined, fault: null, answered: false };
    requests.push(record);
    const raw = await readBody(request);
    record.body = raw.length === 0 ? undefined : safeJson(raw);
    const rule = takeFault(method, path, raw);
    record.fault = rule?.kind ?? null;

    if (rule?.kind === 'reset-before') {
      // Dropped before anything is processed: nothing happened at Mollie.
      request.socket.destroy();
      return;
    }

    if (rule?.kind === 'status') {
      send(response, record, rule.status, rule.body ?? problemBody(rule.status, statusTitle(rule.status), 'Injected fault.'), rule.headers);
      return;
    }
    if (rule?.kind === 'hang') return;
    if (rule?.kind === 'non-json') {
      response.writeHead(rule.status, { 'content-type': 'text/html' });
      response.end(`<html><body><h1>${rule.status} ${statusTitle(rule.status)}</h1></body></html>`);
      record.answered = true;
      return;
    }

    const { status, body } = await route(method, path, request, record.body);
    if (rule?.kind === 'reset-after') {
      request.socket.destroy();
      return;
    }
    if (rule?.kind === 'delay') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!response.destroyed) send(response, record, status, body);
      }, rule.ms);
      timers.add(timer);
      return;
    }
    send(response, record, status, body);
  }

  async function route(method: string, path: string, request: IncomingMessage, body: unknown): Promise<{ status: number; body: unknown }> {
    const authorization = request.headers.authorization ?? '';
    if (!/^Bearer (test|live|access)_[A-Za-z0-9]+$/.test(authorization)) {
      return { status: 401, body: problemBody(401, 'Unauthorized Request', 'Missing authentication, or failed to authenticate') };
    }
    const idempotencyKey = headerValue(request.headers['idempotency-key']) ?? randomUUID();
    const input = stripAccessTokenParameters(body);
    try {
      let match: RegExpExecArray | null;
      if (method === 'POST' && path === '/v2/payments') {
        return { status: 201, body: paymentResource(await simulator.createPayment(input as never, { idempotencyKey })) };
      }
      if (method === 'GET' && path === '/v2/payments') {
        return { status: 200, body: page('payments', 'payments', (await simulator.listPaymentsSince(EPOCH, Number.MAX_SAFE_INTEGER)).items, paymentResource, request) };
      }
      if ((match = /^\/v2\/payments\/([^/]+)$/.exec(path))) {
        if (method === 'GET') return { status: 200, body: paymentResource(await simulator.getPayment(match[1]!)) };
        if (method === 'DELETE') return { status: 200, body: paymentResource(await simulator.cancelPayment(match[1]!, { idempotencyKey })) };
      }
      if (method === 'POST' && path === '/v2/payment-links') {
        return { status: 201, body: paymentLinkResource(await simulator.createPaymentLink(input as never, { idempotencyKey })) };
      }
      if (method === 'GET' && path === '/v2/payment-links') {
        return { status: 200, body: page('payment_links', 'payment-links', (await simulator.listPaymentLinksSince(EPOCH, Number.MAX_SAFE_INTEGER)).items, paymentLinkResource, request) };
      }
      if ((match = /^\/v2\/payment-links\/([^/]+)$/.exec(path))) {
        const linkId = match[1]!;
        if (method === 'GET') return { status: 200, body: paymentLinkResource(await simulator.getPaymentLink(linkId)) };
        if (method === 'PATCH') return { status: 200, body: paymentLinkResource(simulator.updatePaymentLink(linkId, (input ?? {}) as Record<string, unknown>)) };
        if (method === 'DELETE') {
          simulator.deletePaymentLink(linkId);
          return { status: 204, body: undefined };
        }
      }
      if ((match = /^\/v2\/payment-links\/([^/]+)\/payments$/.exec(path)) && method === 'GET') {
        const linkId = match[1]!;
        return { status: 200, body: halList('payments', (await simulator.listPaymentLinkPayments(linkId)).map(paymentResource), `payment-links/${linkId}/payments`) };
      }
      if ((match = /^\/v2\/payments\/([^/]+)\/refunds$/.exec(path))) {
        const paymentId = match[1]!;
        if (method === 'POST') {
          return { status: 201, body: refundResource(await simulator.createRefund(paymentId, input as never, { idempotencyKey })) };
        }
        if (method === 'GET') {
          return { status: 200, body: halList('refunds', (await simulator.listRefunds(paymentId)).map(refundResource), `payments/${paymentId}/refunds`) };
        }
      }
      return { status: 404, body: problemBody(404, 'Not Found', 'The resource could not be found.') };
    } catch (error) {
      if (!(error instanceof MollieError)) throw error;
      const problem = error.mollie ?? { status: 404, title: 'Not Found', detail: error.message, field: null };
      return { status: problem.status, body: problemBody(problem.status, problem.title, problem.detail, problem.field) };
    }
  }

  /** One page of a newest-first list, as Mollie pages it: `limit` (at most 250) from the id in `from`, and a next link. */
  function page<T extends { id: string }>(name: string, path: string, all: T[], resource: (item: T) => unknown, request: IncomingMessage) {
    const query = new URL(request.url ?? '/', 'https://double.invalid').searchParams;
    const limit = Math.max(1, Math.min(250, Number(query.get('limit') ?? '50')));
    const from = query.get('from');
    const start = from === null ? 0 : Math.max(0, all.findIndex((item) => item.id === from));
    const items = all.slice(start, start + limit);
    const next = all[start + limit];
    return {
      count: items.length,
      _embedded: { [name]: items.map(resource) },
      _links: { self: link(path), previous: null, next: next ? link(`${path}?from=${next.id}&limit=${limit}`) : null, documentation: DOCS },
    };
  }

  /** One page of a list, as Mollie's HAL answers it. */
  function halList(name: string, items: unknown[], selfPath: string) {
    return { count: items.length, _embedded: { [name]: items }, _links: { self: link(selfPath), previous: null, next: null, documentation: DOCS } };
  }

  function link(path: string) {
    return { href: `${base}${path}`, type: 'application/hal+json' };
  }

  function paymentResource(payment: Payment) {
    return withoutNulls({
      resource: 'payment',
      id: payment.id,
      mode: payment.mode,
      createdAt: payment.createdAt,
      amount: payment.amount,
      description: payment.description,
      method: payment.method,
      metadata: payment.metadata,
      status: payment.status,
      isCancelable: payment.status === 'open',
      expiresAt: payment.expiresAt,
      paidAt: payment.paidAt,
      canceledAt: payment.canceledAt,
      expiredAt: payment.expiredAt,
      failedAt: payment.failedAt,
      amountRefunded: payment.amountRefunded,
      amountRemaining: payment.amountRemaining,
      locale: payment.locale,
      profileId: 'pfl_QkEhN94Ba',
      sequenceType: 'oneoff',
      redirectUrl: payment.redirectUrl,
      webhookUrl: payment.webhookUrl,
      _links: withoutNulls({
        self: link(`payments/${payment.id}`),
        checkout: payment.checkoutUrl ? { href: payment.checkoutUrl, type: 'text/html' } : null,
        refunds: payment.amountRefunded ? link(`payments/${payment.id}/refunds`) : null,
        dashboard: { href: `https://my.mollie.com/dashboard/payments/${payment.id}`, type: 'text/html' },
        documentation: { href: 'https://docs.mollie.com/reference/get-payment', type: 'text/html' },
      }),
    });
  }

  /** Mollie's payment link: no status and no metadata; `paidAt` and `expiresAt` are null when not set. */
  function paymentLinkResource(paymentLink: PaymentLink) {
    return {
      resource: 'payment-link',
      id: paymentLink.id,
      mode: paymentLink.mode,
      description: paymentLink.description,
      amount: paymentLink.amount,
      archived: paymentLink.archived,
      redirectUrl: paymentLink.redirectUrl,
      webhookUrl: paymentLink.webhookUrl,
      profileId: 'pfl_QkEhN94Ba',
      createdAt: paymentLink.createdAt,
      paidAt: paymentLink.paidAt,
      updatedAt: null,
      expiresAt: paymentLink.expiresAt,
      reusable: paymentLink.reusable,
      allowedMethods: null,
      sequenceType: 'oneoff',
      customerId: null,
      _links: {
        self: link(`payment-links/${paymentLink.id}`),
        paymentLink: { href: paymentLink.url, type: 'text/html' },
        documentation: { href: 'https://docs.mollie.com/reference/get-payment-link', type: 'text/html' },
      },
    };
  }

  function refundResource(refund: Refund) {
    return withoutNulls({
      resource: 'refund',
      id: refund.id,
      mode: refund.mode,
      amount: refund.amount,
      status: refund.status,
      createdAt: refund.createdAt,
      description: refund.description,
      metadata: refund.metadata,
      paymentId: refund.paymentId,
      _links: {
        self: link(`payments/${refund.paymentId}/refunds/${refund.id}`),
        payment: link(`payments/${refund.paymentId}`),
        documentation: { href: 'https://docs.mollie.com/reference/get-refund', type: 'text/html' },
      },
    });
  }

  function takeFault(method: string, path: string, body: string): Fault | undefined {
    const index = rules.findIndex(
      (rule) => (!rule.method || rule.method === method) && (!rule.path || rule.path.test(path)) && (!rule.bodyIncludes || body.includes(rule.bodyIncludes)),
    );
    if (index === -1) return undefined;
    const rule = rules[index]!;
    rule.remaining -= 1;
    if (rule.remaining <= 0) rules.splice(index, 1);
    return rule.fault;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `https://127.0.0.1:${port}/v2/`;

  return {
    url: base,
    simulator,
    requests,
    inject(rule) {
      const entry = { ...rule, remaining: rule.times ?? 1 };
      rules.push(entry);
      return () => {
        const index = rules.indexOf(entry);
        if (index !== -1) rules.splice(index, 1);
      };
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(response: ServerResponse, record: RecordedRequest, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (status === 204) response.writeHead(204, headers).end();
  else {
    response.writeHead(status, { 'content-type': 'application/hal+json', ...headers });
    response.end(JSON.stringify(body));
  }
  record.answered = true;
}

function problemBody(status: number, title: string, detail: string, field?: string | null) {
  return { status, title, detail, ...(field ? { field } : {}), _links: { documentation: DOCS } };
}

function statusTitle(status: number): string {
  const titles: Record<number, string> = {
    400: 'Bad Request', 401: 'Unauthorized Request', 404: 'Not Found', 422: 'Unprocessable Entity', 429: 'Too Many Requests',
    500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
  };
  return titles[status] ?? 'Error';
}

/** With an organization access token the client adds profileId and testmode to every body; Mollie consumes them. */
function stripAccessTokenParameters(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const { profileId: _profileId, testmode: _testmode, ...rest } = body as Record<string, unknown>;
  return rest;
}

function withoutNulls<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== null && field !== undefined)) as Partial<T>;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

let certificate: { key: string; cert: string } | undefined;

/** A throwaway certificate for 127.0.0.1, made with the system's openssl, once per test process. */
function selfSignedCertificate(): { key: string; cert: string } {
  if (certificate) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'mollie-double-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    certificate = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
    return certificate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
