/**
 * The simulator's checkout page for a stdio server: a small loopback HTTP listener beside the protocol on stdin and
 * stdout, so the checkout_url a person gets in their client opens in their browser. Only /checkout/ is served, with
 * the same Host and Origin checks as the HTTP transport (a web page elsewhere must not pay or cancel through it).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { MollieSimulator } from '../mollie/simulator.js';
import type { PaymentRecords } from '../payments/payment-records.js';
import type { MollieWebhook } from '../webhooks/mollie-webhook.js';
import { CHECKOUT_PATH, CheckoutPage } from './checkout-page.js';
import { sendJson } from './http-io.js';
import { checkHeaders, originRules } from './request-checks.js';

export interface CheckoutServer {
  /** Where checkout links point, e.g. http://127.0.0.1:3334/checkout/ */
  baseUrl: string;
  close(): Promise<void>;
}

export interface CheckoutServerDeps {
  simulator: MollieSimulator;
  payments: PaymentRecords;
  webhook: MollieWebhook;
  logger: Logger;
}

const HOST = '127.0.0.1';

/** Listens on `port`, or on a free port when it is taken (another server on this machine has the page already). */
export async function startCheckoutServer(deps: CheckoutServerDeps, port: number): Promise<CheckoutServer> {
  const page = new CheckoutPage({ simulator: deps.simulator, payments: deps.payments, webhook: deps.webhook });
  const rules = originRules({ bindHost: HOST, allowedOrigins: [], publicUrls: [] });
  const failed = (res: ServerResponse, error: unknown): void => {
    // A browser that gave up mid-request is not the page failing.
    if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || (error as Error).message === 'aborted') deps.logger.debug({ err: error }, 'A checkout request was aborted');
    else deps.logger.error({ err: error }, 'The simulator checkout page failed');
    if (!res.headersSent) sendJson(res, 500, { error: 'The checkout page failed; see the server log.' });
    else res.end();
  };
  // Anything a web page or another local process sends reaches this listener: nothing it sends may stop the MCP
  // server beside it, so every request is answered from inside one try, the header checks first.
  const server = createServer((req, res) => {
    try {
      const problem = checkHeaders(req.headers, rules);
      if (problem) return sendJson(res, 403, { error: problem.message });
      const path = (req.url ?? '/').split('?')[0]!;
      if (!path.startsWith(CHECKOUT_PATH) || !['GET', 'HEAD', 'POST'].includes(req.method ?? '')) {
        return sendJson(res, 404, { error: 'This port serves only the simulator checkout page, at /checkout/<tr_...|pl_...>.' });
      }
      page.serve(req, res, path.slice(CHECKOUT_PATH.length)).catch((error: unknown) => failed(res, error));
    } catch (error) {
      failed(res, error);
    }
  });
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.keepAliveTimeout = 5_000;
  let bound: number;
  try {
    bound = await listen(server, port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw error;
    deps.logger.info({ port }, 'The checkout port is taken (another server has its page open); using a free one');
    bound = await listen(server, 0);
  }
  // The listener must not keep a stdio server alive once its client has gone.
  server.unref();
  return {
    baseUrl: `http://${HOST}:${bound}${CHECKOUT_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => reject(error);
    server.once('error', failed);
    server.listen(port, HOST, () => {
      server.off('error', failed);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
