/**
 * @mollie/api-client hides the HTTP exchange behind its errors: a 429's Retry-After header, the status of a reply
 * whose body is not JSON, and the socket error of a dropped connection are all lost. Node's http diagnostics
 * channel lets us watch the requests made inside one port call (tracked with AsyncLocalStorage) and keep exactly
 * those facts, without patching the client.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';

export interface HttpExchange {
  /** HTTP requests sent in this call, the client's own 5xx retries included. */
  requests: number;
  lastStatus: number | null;
  /** Seconds, from the last response's Retry-After header, when it was a number. */
  retryAfterSeconds: number | null;
  /** The socket error code of the last request that failed without a response (ECONNRESET, ...). */
  networkErrorCode: string | null;
}

const current = new AsyncLocalStorage<HttpExchange>();
let subscribed = false;

function subscribeOnce(): void {
  if (subscribed) return;
  subscribed = true;
  diagnosticsChannel.subscribe('http.client.request.start', (message) => {
    const exchange = current.getStore();
    if (!exchange) return;
    const { request } = message as { request: ClientRequest };
    exchange.requests += 1;
    request.on('response', (response: IncomingMessage) => {
      exchange.lastStatus = response.statusCode ?? null;
      const retryAfter = Number.parseInt(String(response.headers['retry-after'] ?? ''), 10);
      exchange.retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null;
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      exchange.networkErrorCode = error.code ?? 'ERR_NETWORK';
    });
  });
}

/** Runs `call` and reports what went over the wire while it ran. */
export function observeHttpExchange<T>(call: () => Promise<T>): { exchange: HttpExchange; result: Promise<T> } {
  subscribeOnce();
  const exchange: HttpExchange = { requests: 0, lastStatus: null, retryAfterSeconds: null, networkErrorCode: null };
  const result = current.run(exchange, call);
  return { exchange, result };
}
