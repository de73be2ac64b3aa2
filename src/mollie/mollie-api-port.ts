/**
 * The Mollie port on @mollie/api-client: a deadline on every call, retries that can never duplicate a write, and
 * Mollie's answers mapped to this server's types and error codes.
 *
 * Retries, and who does them:
 * - 5xx: the client itself retries (3 attempts, 2 s apart or Retry-After, the same Idempotency-Key). Retrying
 *   again here would multiply attempts past the deadline, so a 5xx that comes out of the client is final.
 * - 429 (which the client does not retry): waited out here, honouring Retry-After up to a ceiling.
 * - network errors and unreadable replies: retried here with exponential backoff and jitter.
 * Every write carries the caller's Idempotency-Key on every attempt, so Mollie replays instead of repeating.
 */
import { VERSION } from '../version.js';
import type { MollieClient } from '@mollie/api-client';
import type { Logger } from 'pino';
import type { MollieCredentials } from './credentials.js';
import { errorFromMollieProblem, malformedIdError, MollieError, type WriteEffect } from './errors.js';
import { observeHttpExchange, type HttpExchange } from './http-exchange.js';
import type { Amount } from './money.js';
import {
  isFinalStatus,
  isResourceId,
  PAYMENT_STATUSES,
  REFUND_STATUSES,
  type CreatePaymentLinkRequest,
  type CreatePaymentRequest,
  type CreateRefundRequest,
  type Listed,
  type Metadata,
  type MollieMode,
  type MolliePort,
  type Payment,
  type PaymentLink,
  type Refund,
  type RefundStatus,
  type WriteOptions,
} from './port.js';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy.js';

export interface MollieApiPortOptions {
  /** How long one port call may take, retries included. The client cannot abort, so past this we stop waiting. */
  timeoutMs?: number;
  retryPolicy?: RetryPolicy;
  logger?: Logger;
  random?: () => number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
/** Sent in the User-Agent, so Mollie support can tell our traffic apart. */
const VERSION_STRING = `MollieInvoiceMcp/${VERSION}`;

type CallKind = 'read' | 'write';

/** Socket errors that mean the request never reached Mollie, so a write certainly did nothing. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

class DeadlineExceeded extends Error {}

export function createMollieApiPort(credentials: MollieCredentials, options: MollieApiPortOptions = {}): MolliePort {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  const random = options.random ?? Math.random;
  const logger = options.logger;
  const mode: MollieMode = credentials.mode;
  let client: Promise<MollieClient> | undefined;

  // Loaded on first use, so a server that never talks to Mollie (or not yet) starts without the client.
  function mollie(): Promise<MollieClient> {
    client ??= import('@mollie/api-client').then(({ createMollieClient }) =>
      credentials.kind === 'api_key'
        ? createMollieClient({ apiKey: credentials.apiKey, apiEndpoint: credentials.apiEndpoint, versionStrings: VERSION_STRING })
        : createMollieClient({
            accessToken: credentials.accessToken,
            apiEndpoint: credentials.apiEndpoint,
            versionStrings: VERSION_STRING,
            parameterDefaults: { profileId: credentials.profileId, testmode: credentials.mode === 'test' },
          }),
    );
    return client;
  }

  async function call<T>(operation: string, kind: CallKind, run: (client: MollieClient) => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    const api = await mollie();
    // Once any attempt of a write may have reached Mollie, the call's outcome stays unknown whatever follows.
    let effect: WriteEffect = 'none';
    for (let retry = 0; ; retry += 1) {
      const remainingMs = deadline - Date.now();
      const { exchange, result } = observeHttpExchange(() => run(api));
      let failure: MollieError;
      let retryHere: boolean;
      try {
        return await withDeadline(result, remainingMs);
      } catch (error) {
        if (error instanceof DeadlineExceeded) throw timeoutError(operation, kind, timeoutMs);
        ({ failure, retryHere } = classify(error, exchange, kind));
        if (failure.effect === 'unknown') effect = 'unknown';
      }
      const delayMs = failure.code === 'rate_limited' && failure.retryAfterSeconds !== null
        ? failure.retryAfterSeconds * 1000
        : backoffDelayMs(retry, policy, random);
      const tooLong = failure.code === 'rate_limited' && delayMs > policy.retryAfterCeilingMs;
      if (!retryHere || retry >= policy.maxRetries || tooLong || delayMs >= deadline - Date.now()) throw withEffect(failure, effect);
      logger?.warn(
        { operation, retry: retry + 1, code: failure.code, status: exchange.lastStatus, network_error: exchange.networkErrorCode, delay_ms: delayMs },
        'Mollie call failed; retrying',
      );
      await sleep(delayMs);
    }
  }

  return {
    kind: 'mollie',
    mode,

    createPayment: (request: CreatePaymentRequest, { idempotencyKey }: WriteOptions) =>
      call('create payment', 'write', async (api) => {
        const payment = await api.payments.create({
          amount: request.amount,
          description: request.description,
          ...(request.redirectUrl !== undefined ? { redirectUrl: request.redirectUrl } : {}),
          ...(request.webhookUrl !== undefined ? { webhookUrl: request.webhookUrl } : {}),
          ...(request.locale !== undefined ? { locale: request.locale as never } : {}),
          ...(request.metadata !== undefined ? { metadata: request.metadata } : {}),
          idempotencyKey,
        } as Parameters<MollieClient['payments']['create']>[0]);
        return toPayment(payment, mode);
      }),

    getPayment: (paymentId: string) =>
      requirePaymentId(paymentId) ?? call('get payment', 'read', async (api) => toPayment(await api.payments.get(paymentId), mode)),

    cancelPayment: (paymentId: string, { idempotencyKey }: WriteOptions) =>
      requirePaymentId(paymentId) ?? call('cancel payment', 'write', async (api) => toPayment(await api.payments.cancel(paymentId, { idempotencyKey }), mode)),

    createRefund: (paymentId: string, request: CreateRefundRequest, { idempotencyKey }: WriteOptions) =>
      requirePaymentId(paymentId) ?? call('create refund', 'write', async (api) => {
        const refund = await api.paymentRefunds.create({
          paymentId,
          amount: request.amount,
          ...(request.description !== undefined ? { description: request.description } : {}),
          ...(request.metadata !== undefined ? { metadata: request.metadata } : {}),
          idempotencyKey,
        });
        return toRefund(refund, mode);
      }),

    listRecentPayments: (limit: number) =>
      call('list payments', 'read', async (api) => (await api.payments.page({ limit: Math.max(1, Math.min(250, limit)) })).map((payment) => toPayment(payment, mode))),

    listRefunds: (paymentId: string) =>
      requirePaymentId(paymentId) ?? call('list refunds', 'read', async (api) => {
        const refunds: Refund[] = [];
        for await (const refund of api.paymentRefunds.iterate({ paymentId })) refunds.push(toRefund(refund, mode));
        return refunds;
      }),

    createPaymentLink: (request: CreatePaymentLinkRequest, { idempotencyKey }: WriteOptions) =>
      call('create payment link', 'write', async (api) => {
        const link = await api.paymentLinks.create({
          amount: request.amount,
          description: request.description,
          ...(request.expiresAt !== undefined ? { expiresAt: request.expiresAt } : {}),
          ...(request.redirectUrl !== undefined ? { redirectUrl: request.redirectUrl } : {}),
          ...(request.webhookUrl !== undefined ? { webhookUrl: request.webhookUrl } : {}),
          idempotencyKey,
        } as Parameters<MollieClient['paymentLinks']['create']>[0]);
        return toPaymentLink(link, mode);
      }),

    getPaymentLink: (linkId: string) =>
      requireLinkId(linkId) ?? call('get payment link', 'read', async (api) => toPaymentLink(await api.paymentLinks.get(linkId), mode)),

    // The client lists a link's payments from the link object only (its self link plus /payments).
    listPaymentLinkPayments: (linkId: string) =>
      requireLinkId(linkId) ?? call('list payment link payments', 'read', async (api) => {
        const link = await api.paymentLinks.get(linkId);
        const payments: Payment[] = [];
        for await (const payment of link.getPayments()) payments.push(toPayment(payment, mode));
        return payments;
      }),

    // PATCH sets a state rather than adding one, so a repeat (the client's own 5xx retries included) is harmless.
    archivePaymentLink: (linkId: string) =>
      requireLinkId(linkId) ?? call('archive payment link', 'write', async (api) => toPaymentLink(await api.paymentLinks.update(linkId, { archived: true }), mode)),

    listPaymentLinksSince: (since: string, max: number) =>
      call('list payment links', 'read', async (api) => collectSince(api.paymentLinks.iterate(), (link) => toPaymentLink(link, mode), since, max)),

    listPaymentsSince: (since: string, max: number) =>
      call('list payments', 'read', async (api) => collectSince(api.payments.iterate(), (payment) => toPayment(payment, mode), since, max)),

    listRecentPaymentLinks: (limit: number) =>
      call('list payment links', 'read', async (api) => (await api.paymentLinks.page({ limit: Math.max(1, Math.min(250, limit)) })).map((link) => toPaymentLink(link, mode))),
  };
}

/** Walks Mollie's newest-first list page by page until an item older than `since`, or `max` items. */
async function collectSince<Raw, T extends { createdAt: string }>(list: AsyncIterable<Raw>, convert: (raw: Raw) => T, since: string, max: number): Promise<Listed<T>> {
  const from = Date.parse(since);
  const items: T[] = [];
  for await (const raw of list) {
    const item = convert(raw);
    if (Date.parse(item.createdAt) < from) return { items, complete: true };
    if (items.length >= max) return { items, complete: false };
    items.push(item);
  }
  return { items, complete: true };
}

/** A rejected promise for an id that cannot exist, or undefined to go on. */
function requirePaymentId(paymentId: string): Promise<never> | undefined {
  return isResourceId('payment', paymentId) ? undefined : Promise.reject(malformedIdError('payment', paymentId));
}

function requireLinkId(linkId: string): Promise<never> | undefined {
  return isResourceId('paymentLink', linkId) ? undefined : Promise.reject(malformedIdError('paymentLink', linkId));
}

function withDeadline<T>(result: Promise<T>, remainingMs: number): Promise<T> {
  if (remainingMs <= 0) return Promise.reject(new DeadlineExceeded());
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), remainingMs);
  });
  return Promise.race([result, deadline]).finally(() => clearTimeout(timer));
}

function timeoutError(operation: string, kind: CallKind, timeoutMs: number): MollieError {
  return new MollieError({
    code: 'mollie_unavailable',
    message:
      kind === 'write'
        ? `Mollie did not answer the ${operation} request within ${timeoutMs / 1000} s, so whether it took effect is unknown. Repeating it with the same idempotency key is safe.`
        : `Mollie did not answer the ${operation} request within ${timeoutMs / 1000} s; try again shortly.`,
    retryable: true,
    effect: kind === 'write' ? 'unknown' : 'none',
  });
}

interface ClientErrorShape {
  statusCode?: unknown;
  title?: unknown;
  field?: unknown;
  message?: unknown;
}

/** Turns what the client threw, and what we saw on the wire, into our error and whether to retry it here. */
function classify(error: unknown, exchange: HttpExchange, kind: CallKind): { failure: MollieError; retryHere: boolean } {
  const thrown = (typeof error === 'object' && error !== null ? error : {}) as ClientErrorShape;
  if (!(error instanceof Error) || (error.name !== 'ApiError' && error.name !== 'MollieApiError')) {
    // Not the client's error: a bug of ours, not Mollie's; let it surface as it is.
    throw error;
  }
  const status = typeof thrown.statusCode === 'number' ? thrown.statusCode : exchange.lastStatus;
  const effectIfWrite = kind === 'write' ? 'unknown' : 'none';

  if (typeof thrown.statusCode === 'number' && status !== null) {
    // Mollie answered with its JSON problem body.
    const failure = errorFromMollieProblem(
      {
        status,
        title: typeof thrown.title === 'string' ? thrown.title : 'Error',
        detail: typeof thrown.message === 'string' ? thrown.message : 'Mollie gave no detail.',
        field: typeof thrown.field === 'string' ? thrown.field : null,
      },
      status === 429 ? exchange.retryAfterSeconds ?? undefined : undefined,
    );
    return { failure: withEffect(failure, kind === 'write' ? failure.effect : 'none'), retryHere: status === 429 };
  }

  if (status !== null) {
    // A reply arrived but its body was not JSON (a proxy's error page, a truncated body).
    if (status === 429) {
      return {
        failure: new MollieError({
          code: 'rate_limited',
          message: 'Mollie is rate limiting this account; try again shortly.',
          retryable: true,
          ...(exchange.retryAfterSeconds !== null ? { retryAfterSeconds: exchange.retryAfterSeconds } : {}),
        }),
        retryHere: true,
      };
    }
    if (status >= 400 && status < 500) {
      return {
        failure: new MollieError({
          code: status === 404 ? 'not_found' : 'mollie_rejected',
          message: `Mollie answered ${status} with a body that is not JSON.`,
          retryable: false,
          mollie: { status, title: 'Unexpected response', detail: 'The response body was not JSON.', field: null },
        }),
        retryHere: false,
      };
    }
    return {
      failure: new MollieError({
        code: 'mollie_unavailable',
        message: `Mollie answered ${status} with a body that is not JSON${kind === 'write' ? ', so whether the request took effect is unknown' : ''}; it is safe to try again.`,
        retryable: true,
        effect: effectIfWrite,
      }),
      // The client already retried a 5xx; a readable-status reply with a garbled body is worth another try.
      retryHere: status < 500,
    };
  }

  const code = exchange.networkErrorCode ?? 'ERR_NETWORK';
  const neverConnected = NEVER_CONNECTED.has(code);
  return {
    failure: new MollieError({
      code: 'mollie_unavailable',
      message: neverConnected
        ? `Could not connect to Mollie (${code}); nothing was sent. Try again shortly.`
        : `The connection to Mollie failed (${code})${kind === 'write' ? ', so whether the request took effect is unknown' : ''}; it is safe to try again.`,
      retryable: true,
      effect: neverConnected ? 'none' : effectIfWrite,
    }),
    retryHere: true,
  };
}

function withEffect(error: MollieError, effect: WriteEffect): MollieError {
  if (error.effect === effect) return error;
  return new MollieError({
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    effect,
    ...(error.mollie ? { mollie: error.mollie } : {}),
    ...(error.retryAfterSeconds !== null ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- Mollie's resources to ours. The client's objects carry Mollie's JSON fields; we read those and nothing else.

interface WirePayment {
  id: string;
  mode?: string;
  status: string;
  amount: Amount;
  amountRefunded?: Amount;
  amountRemaining?: Amount;
  description: string;
  method?: string | null;
  redirectUrl?: string | null;
  webhookUrl?: string | null;
  locale?: string | null;
  metadata?: unknown;
  createdAt: string;
  paidAt?: string;
  canceledAt?: string;
  expiredAt?: string;
  failedAt?: string;
  expiresAt?: string;
  _links?: { checkout?: { href: string } | null };
}

interface WireRefund {
  id: string;
  paymentId: string;
  mode?: string;
  status: string;
  amount: Amount;
  description?: string;
  metadata?: unknown;
  createdAt: string;
}

function toPayment(resource: unknown, fallbackMode: MollieMode): Payment {
  const wire = resource as WirePayment;
  const status = oneOf(wire.status, PAYMENT_STATUSES, 'payment status');
  return {
    id: wire.id,
    mode: wire.mode === 'live' || wire.mode === 'test' ? wire.mode : fallbackMode,
    status,
    isFinal: isFinalStatus(status),
    amount: plainAmount(wire.amount),
    amountRefunded: wire.amountRefunded ? plainAmount(wire.amountRefunded) : null,
    amountRemaining: wire.amountRemaining ? plainAmount(wire.amountRemaining) : null,
    description: wire.description,
    method: wire.method ?? null,
    checkoutUrl: wire._links?.checkout?.href ?? null,
    redirectUrl: wire.redirectUrl ?? null,
    webhookUrl: wire.webhookUrl ?? null,
    locale: wire.locale ?? null,
    metadata: plainMetadata(wire.metadata),
    createdAt: wire.createdAt,
    paidAt: wire.paidAt ?? null,
    canceledAt: wire.canceledAt ?? null,
    expiredAt: wire.expiredAt ?? null,
    failedAt: wire.failedAt ?? null,
    expiresAt: wire.expiresAt ?? null,
  };
}

interface WirePaymentLink {
  id: string;
  mode?: string;
  description: string;
  amount?: Amount | null;
  archived?: boolean;
  reusable?: boolean | null;
  redirectUrl?: string | null;
  webhookUrl?: string | null;
  createdAt: string;
  paidAt?: string | null;
  expiresAt?: string | null;
  // The client moves _links into a helper; getPaymentUrl() reads _links.paymentLink.
  getPaymentUrl?: () => string;
  _links?: { paymentLink?: { href: string } };
}

function toPaymentLink(resource: unknown, fallbackMode: MollieMode): PaymentLink {
  const wire = resource as WirePaymentLink;
  const url = wire._links?.paymentLink?.href ?? (typeof wire.getPaymentUrl === 'function' ? wire.getPaymentUrl() : undefined);
  if (typeof url !== 'string') {
    throw new MollieError({ code: 'mollie_unavailable', message: `Mollie returned payment link ${wire.id} without its URL; this server needs an update to understand it.`, retryable: false });
  }
  return {
    id: wire.id,
    mode: wire.mode === 'live' || wire.mode === 'test' ? wire.mode : fallbackMode,
    description: wire.description,
    amount: wire.amount ? plainAmount(wire.amount) : null,
    archived: wire.archived === true,
    reusable: wire.reusable === true,
    redirectUrl: wire.redirectUrl ?? null,
    webhookUrl: wire.webhookUrl ?? null,
    createdAt: wire.createdAt,
    paidAt: wire.paidAt ?? null,
    expiresAt: wire.expiresAt ?? null,
    url,
  };
}

function toRefund(resource: unknown, fallbackMode: MollieMode): Refund {
  const wire = resource as WireRefund;
  return {
    id: wire.id,
    paymentId: wire.paymentId,
    mode: wire.mode === 'live' || wire.mode === 'test' ? wire.mode : fallbackMode,
    status: oneOf(wire.status, REFUND_STATUSES, 'refund status') as RefundStatus,
    amount: plainAmount(wire.amount),
    description: wire.description ?? '',
    metadata: plainMetadata(wire.metadata),
    createdAt: wire.createdAt,
  };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new MollieError({
    code: 'mollie_unavailable',
    message: `Mollie returned an unknown ${what} ${JSON.stringify(value)}; this server needs an update to understand it.`,
    retryable: false,
  });
}

function plainAmount(amount: Amount): Amount {
  return { value: amount.value, currency: amount.currency };
}

function plainMetadata(metadata: unknown): Metadata | null {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return null;
  const plain: Metadata = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value === 'string') plain[key] = value;
  }
  return plain;
}

