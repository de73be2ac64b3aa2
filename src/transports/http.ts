/**
 * Streamable HTTP: one server for many agents. Every request to /mcp names its agent by bearer token; a session
 * belongs to the agent that opened it. The same listener takes Mollie's webhooks and, with the simulator, serves its
 * checkout page. Header checks come first (DNS rebinding), then the token, then the session, then the body.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeStreamableHTTPServerTransport, toNodeHandler, toWebRequest } from '@modelcontextprotocol/node';
import { createMcpHandler, isInitializeRequest, isJsonContentType, isLegacyRequest, PROTOCOL_VERSION_META_KEY } from '@modelcontextprotocol/server';
import type { AuthInfo } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { HttpConfig } from '../config.js';
import type { Engine } from '../engine.js';
import { agentForToken, presentedToken } from '../http/bearer.js';
import { CHECKOUT_PATH, CheckoutPage } from '../http/checkout-page.js';
import { BodyTooLarge, readBody, RPC_INVALID_REQUEST, RPC_PARSE_ERROR, RPC_REFUSED, RPC_SESSION_NOT_FOUND, sendJson, sendRpcError } from '../http/http-io.js';
import { checkHeaders, originRules } from '../http/request-checks.js';
import { SessionRegistry, type Session } from '../http/sessions.js';
import { MollieSimulator } from '../mollie/simulator.js';
import type { PolicySet } from '../policy/policy.js';
import { createMcpServer } from '../server.js';
import { VERSION } from '../version.js';
import { MollieWebhook, WEBHOOK_ACTOR } from '../webhooks/mollie-webhook.js';
import { KNOWN_PAYMENT_WEBHOOKS, RefusalLimiter, REFUSALS, WEBHOOKS, type SummaryEvent } from '../http/refusal-limiter.js';
import { isResourceId } from '../mollie/port.js';
import { Console } from '../console/console.js';
import { CONSOLE_PATH } from '../console/pages.js';
import { TOOLS } from '../../tools/index.js';

export const MCP_PATH = '/mcp';

/** Who calls: the agent the bearer check found, handed over as the request's AuthInfo. */
const callerOf = (authInfo: AuthInfo | undefined): { agent: string | null; token: string | null } => ({ agent: authInfo?.clientId ?? null, token: authInfo?.token ?? null });
export const WEBHOOK_PATH = '/webhooks/mollie';

/** A tool call is a few hundred bytes; a megabyte leaves room for any honest request and none for a flood. */
const MAX_MCP_BODY = 1024 * 1024;
/** Mollie sends `id=tr_...` and nothing else. */
const MAX_WEBHOOK_BODY = 4096;
const MAX_SESSIONS = 1000;
const REALM = 'Bearer realm="mollie-invoice-mcp"';

export interface HttpServeOptions extends HttpConfig {
  webhookUrl: string | null;
  /** Console sessions end after this long idle. */
  consoleIdleMs: number;
  /** MOLLIE_MCP_CONSOLE_URL, when the console is reached through a proxy (https there makes its cookies Secure). */
  consoleUrl: string | null;
  /** How long calls in flight may take to finish after SIGTERM. */
  shutdownGraceMs: number;
  /**
   * No sessions: each POST gets a fresh MCP server and transport, used once (the SDK's stateless mode), so any replica
   * can take any request. Nothing is held between requests, so a 2025-11-25 client gets no in-client confirmation
   * (approvals go out of band), no standalone event stream (GET) and no tools/list_changed notification. 2026-07-28
   * clients are served the same way in either mode (every request of theirs stands alone).
   */
  stateless?: boolean;
}

export interface HttpService {
  /** The base URL the server listens on, e.g. http://127.0.0.1:3333. */
  url: string;
  /** Stops accepting, lets calls in flight finish (bounded), closes sessions and the database. */
  close(why: string): Promise<void>;
}

type Refusal = { status: 401 | 403; reason: string; message: string; agent: string | null; bearerError?: string };

export async function startHttpServer(engine: Engine, options: HttpServeOptions, logger: Logger): Promise<HttpService> {
  const policies = (): PolicySet => engine.policies;
  const rules = originRules({ bindHost: options.host, allowedOrigins: options.allowedOrigins, publicUrls: [options.webhookUrl] });
  const webhook = new MollieWebhook({ mollie: engine.mollie, payments: engine.payments, audit: engine.audit, logger });
  const checkout = engine.mollie instanceof MollieSimulator ? new CheckoutPage({ simulator: engine.mollie, payments: engine.payments, webhook }) : null;
  const sessions = new SessionRegistry(options.sessionIdleMs, MAX_SESSIONS, (session) => {
    logger.info({ session_agent: session.agent }, 'Idle session closed');
    void session.server.close();
  });
  let stopping = false;
  /** POSTs being answered; shutdown waits for them (open GET event streams are not waited for). */
  const answering = new Map<Promise<void>, IncomingMessage>();
  /** 2026-07-28 subscriptions/listen streams: open until the client or the server ends them, so never waited for. */
  const listening = new WeakSet<IncomingMessage>();
  const listeners = new Map<string, number>();

  /** Requests answered with 429 instead of their own rows, written as one event per source and minute. */
  const summarise = (event: SummaryEvent): Promise<unknown> =>
    engine.audit.appendWhenFree({
      call_id: randomUUID(),
      kind: 'event',
      agent: event.kind === 'webhook' ? WEBHOOK_ACTOR : null,
      transport: 'http',
      reason: event.kind === 'webhook' ? 'webhooks_summarised' : 'refusals_summarised',
      reason_message: `${event.count} ${event.kind === 'webhook' ? 'webhook request(s)' : 'refused request(s)'} from ${event.source} between ${event.first} and ${event.last} were answered 429 without a row each (${Object.entries(event.reasons).map(([reason, count]) => `${reason} x${count}`).join(', ')}): the source was over its limit.`,
      rule: event.kind === 'webhook' ? `HTTP: at most ${WEBHOOKS.perMinute} webhooks a minute per source` : `HTTP: at most ${REFUSALS.perMinute} refused requests a minute per source`,
      action: event.kind === 'webhook' ? 'report payment changes' : 'use the MCP endpoint over HTTP',
      arguments: JSON.stringify(event),
    });
  const refusalLimit = new RefusalLimiter('refusal', REFUSALS, summarise, logger);
  const consoleSite = new Console({
    db: engine.db,
    audit: engine.audit,
    approvals: engine.approvals,
    people: engine.people,
    tools: TOOLS.map((tool) => tool.name),
    logger,
    idleMs: options.consoleIdleMs,
    publicUrl: options.consoleUrl,
    admitRefusal: (source) => refusalLimit.admit(source).record,
    noteRefused: (source, reason) => refusalLimit.note(source, reason),
    isAgentToken: (token) => agentForToken(policies(), token) !== null,
  });
  const webhookLimit = new RefusalLimiter('webhook', WEBHOOKS, summarise, logger);
  // A webhook about a payment this server made is Mollie's own, most likely: it is not charged to its sender's budget,
  // which behind a proxy every sender shares, so junk cannot crowd it out. Each such id has a small budget of its own.
  const knownPaymentLimit = new RefusalLimiter('webhook', KNOWN_PAYMENT_WEBHOOKS, () => Promise.resolve(), logger);
  const sourceOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown';
  const tooMany = (res: ServerResponse, retryAfterSeconds: number, message: string): void => {
    sendJson(res, 429, { error: message }, { 'Retry-After': String(retryAfterSeconds) });
  };

  /** Audit rows for a refused request: the decision (denied, why) and its outcome; never the token itself. */
  const recordRefusal = async (req: IncomingMessage, refusal: Refusal): Promise<string> => {
    const callId = randomUUID();
    const base = { call_id: callId, agent: refusal.agent, transport: 'http', client_name: null, tool: null };
    try {
      const details = {
        // The path only: a query string may carry what a client should never have put there (?access_token=...).
        request: `${req.method ?? '?'} ${pathOf(req).slice(0, 100)}`,
        remote_address: req.socket.remoteAddress ?? null,
        ...(req.headers.origin !== undefined ? { origin: req.headers.origin.slice(0, 200) } : {}),
        host: (req.headers.host ?? '').slice(0, 200),
      };
      await engine.audit.appendRefusalWhenFree(
        base,
        { reason: refusal.reason, reason_message: refusal.message, rule: 'HTTP: bearer token, session, Host and Origin checks', action: 'use the MCP endpoint over HTTP', arguments: JSON.stringify(details) },
        { code: 'policy_denied', message: refusal.message },
        0,
      );
    } catch (error) {
      logger.error({ err: error }, 'Could not write the audit rows of a refused HTTP request');
    }
    return callId;
  };

  const refuse = async (req: IncomingMessage, res: ServerResponse, refusal: Refusal): Promise<void> => {
    const admitted = refusalLimit.admit(sourceOf(req));
    if (!admitted.record) {
      refusalLimit.note(sourceOf(req), refusal.reason);
      tooMany(res, admitted.retryAfterSeconds, `Too many refused requests from this address; try again in ${admitted.retryAfterSeconds} s. ${refusal.message}`);
      return;
    }
    const auditId = await recordRefusal(req, refusal);
    logger.warn({ reason: refusal.reason, audit_id: auditId, remote_address: req.socket.remoteAddress, agent: refusal.agent }, 'HTTP request refused');
    const headers: Record<string, string> =
      refusal.status === 401 ? { 'WWW-Authenticate': refusal.bearerError ? `${REALM}, error="${refusal.bearerError}"` : REALM } : {};
    sendRpcError(res, refusal.status, RPC_REFUSED, refusal.message, { reason: refusal.reason, audit_id: auditId }, headers);
  };

  /** The parsed JSON-RPC body of a POST, or undefined after answering the error itself. */
  const readRpcBody = async (req: IncomingMessage, res: ServerResponse): Promise<{ ok: true; body: unknown } | { ok: false }> => {
    let raw: Buffer;
    try {
      raw = await readBody(req, MAX_MCP_BODY);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        sendRpcError(res, 413, RPC_INVALID_REQUEST, `The request body is over ${MAX_MCP_BODY} bytes; no MCP message is that large.`, undefined, { Connection: 'close' });
        return { ok: false };
      }
      throw error;
    }
    try {
      return { ok: true, body: JSON.parse(raw.toString('utf8')) };
    } catch {
      sendRpcError(res, 400, RPC_PARSE_ERROR, 'Parse error: the request body is not valid JSON.');
      return { ok: false };
    }
  };

  /**
   * 2026-07-28 clients: a fresh server for each request, with no session (the protocol has none). A question for the
   * person is the call's "input required" result; the repeat may reach any replica (src/confirmations/).
   */
  const modern = createMcpHandler(
    () => createMcpServer({ gate: engine.gate, caller: callerOf, transport: 'http', era: 'modern', listChanged: true }),
    { legacy: 'reject', maxRequestBodySize: MAX_MCP_BODY, onerror: (error) => logger.debug({ err: error }, 'MCP request error (2026-07-28)') },
  );
  const answerModern = toNodeHandler(modern, { onerror: (error) => logger.warn({ err: error }, 'MCP request failed (2026-07-28)') });
  // Their tools/list_changed arrives on the subscriptions/listen streams they opened, when an edit changed what some
  // agent may list (a stream is not told apart by agent: each client lists again and sees its own).
  let lists = toolLists(engine);
  const stopAnnouncing = engine.onPoliciesChanged(() => {
    const now = toolLists(engine);
    if (now === lists) return;
    lists = now;
    modern.notify.toolsChanged();
  });
  /**
   * A request of the 2026-07-28 protocol, as the SDK's own entry tells them. Only a request with a sign of it (the
   * envelope in a message's _meta, or a protocol-version header that is not a 2024/2025 one) is handed to the SDK's
   * classifier, which builds a web Request: every other request is a 2025-11-25 one, and skips that cost.
   */
  const isModern = async (req: IncomingMessage, body: unknown): Promise<boolean> =>
    mayBeModern(req, body) && !(await isLegacyRequest(await toWebRequest(req, body), body, { maxRequestBodySize: MAX_MCP_BODY }));

  /**
   * A subscriptions/listen stream stays open like a session's event stream, so the same caps hold: at most
   * MOLLIE_MCP_SESSIONS_PER_AGENT per agent and MAX_SESSIONS in all, so one agent cannot take every slot.
   */
  const admitListener = (req: IncomingMessage, res: ServerResponse, agent: string): boolean => {
    // Gone before it was admitted: its close event has already been, and it would never be counted off.
    if (res.closed) return false;
    const open = listeners.get(agent) ?? 0;
    let total = 0;
    for (const count of listeners.values()) total += count;
    if (total >= MAX_SESSIONS) {
      sendRpcError(res, 503, RPC_REFUSED, `This server already has ${MAX_SESSIONS} open subscription streams; close unused clients or try again later.`, undefined, { 'Retry-After': '30' });
      return false;
    }
    if (open >= options.sessionsPerAgent) {
      logger.warn({ session_agent: agent, streams: open }, 'Subscription stream refused: the agent has its maximum open');
      sendRpcError(res, 429, RPC_REFUSED, `Agent "${agent}" already has ${options.sessionsPerAgent} open subscription streams, the most one agent may have (MOLLIE_MCP_SESSIONS_PER_AGENT); close unused clients.`, undefined, { 'Retry-After': '30' });
      return false;
    }
    listeners.set(agent, open + 1);
    listening.add(req);
    res.once('close', () => {
      const left = (listeners.get(agent) ?? 1) - 1;
      if (left <= 0) listeners.delete(agent);
      else listeners.set(agent, left);
    });
    return true;
  };

  /** Sessions being opened (initialize answered but not yet registered), per agent, so a burst cannot pass the cap. */
  const opening = new Map<string, number>();
  const openSession = async (req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse, agent: string, body: unknown): Promise<void> => {
    if (sessions.isFull()) {
      sendRpcError(res, 503, RPC_REFUSED, `This server already has ${sessions.capacity} open sessions; close unused clients or try again later.`, undefined, { 'Retry-After': '30' });
      return;
    }
    if (sessions.countFor(agent) + (opening.get(agent) ?? 0) >= options.sessionsPerAgent) {
      logger.warn({ session_agent: agent, sessions: sessions.countFor(agent) }, 'Session refused: the agent has its maximum open');
      sendRpcError(res, 429, RPC_REFUSED, `Agent "${agent}" already has ${options.sessionsPerAgent} open sessions, the most one agent may have (MOLLIE_MCP_SESSIONS_PER_AGENT); close unused clients (DELETE the session) or wait until idle ones expire.`, undefined, { 'Retry-After': '30' });
      return;
    }
    opening.set(agent, (opening.get(agent) ?? 0) + 1);
    try {
      await startSession(req, res, agent, body);
    } finally {
      const left = (opening.get(agent) ?? 1) - 1;
      if (left === 0) opening.delete(agent);
      else opening.set(agent, left);
    }
  };

  const startSession = async (req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse, agent: string, body: unknown): Promise<void> => {
    const server = createMcpServer({
      gate: engine.gate,
      caller: callerOf,
      transport: 'http',
      policiesChanged: engine.onPoliciesChanged,
    });
    const transport = new NodeStreamableHTTPServerTransport({
      // 256 random bits: a session id is as hard to guess as a token, though it is never enough on its own.
      sessionIdGenerator: () => randomBytes(32).toString('base64url'),
      onsessioninitialized: (id) => {
        const now = Date.now();
        sessions.add({ id, agent, server, transport, openedAt: now, lastSeenAt: now });
        logger.info({ session_agent: agent, sessions: sessions.size }, 'Session opened');
      },
      onsessionclosed: (id) => {
        sessions.remove(id);
        logger.info({ session_agent: agent }, 'Session closed by the client');
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.remove(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
    if (!transport.sessionId) await server.close();
  };

  /**
   * One request, one server: built for it and closed when its answer is done. A server or transport reused across
   * requests would mix one client's answers into another's (CVE-2026-25536).
   */
  const answerStateless = async (req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse, body: unknown): Promise<void> => {
    if (req.method !== 'POST') {
      sendRpcError(res, 405, RPC_REFUSED, 'Method not allowed: this server is stateless (serve --stateless): it keeps no sessions and no event streams. POST each message to /mcp.', undefined, { Allow: 'POST' });
      return;
    }
    const server = createMcpServer({
      gate: engine.gate,
      caller: callerOf,
      transport: 'http',
      askInClient: false,
    });
    const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.once('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const handleMcp = async (req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse): Promise<void> => {
    const presented = presentedToken(req.headers);
    if (presented.kind === 'none') {
      await refuse(req, res, { status: 401, reason: 'missing_token', message: 'This server needs "Authorization: Bearer <token>" on every request; create a token with `mollie-invoice-mcp token create --agent <name>` and put its token_sha256 in that agent\'s policy.', agent: null });
      return;
    }
    if (presented.kind === 'malformed') {
      await refuse(req, res, { status: 401, reason: 'unknown_token', message: 'The Authorization header is not "Bearer <token>" with a token this server issues; send the agent\'s token as printed by `mollie-invoice-mcp token create`.', agent: null, bearerError: 'invalid_token' });
      return;
    }
    const agent = agentForToken(policies(), presented.token);
    if (!agent) {
      await refuse(req, res, { status: 401, reason: 'unknown_token', message: "The bearer token matches no agent's token_sha256 in the policies; check the token, or that the agent's policy file holds its token_sha256.", agent: null, bearerError: 'invalid_token' });
      return;
    }
    req.auth = { token: presented.token, clientId: agent.agent, scopes: [] };
    const sessionId = req.headers['mcp-session-id'];
    // A session is a 2025-11-25 thing: its requests are checked against the session before their body is read.
    const inSession = typeof sessionId === 'string' && options.stateless !== true;
    let body: unknown;
    if (req.method === 'POST' && !inSession) {
      const read = await readRpcBody(req, res);
      if (!read.ok) return;
      body = read.body;
      if (await isModern(req, body)) {
        if (!isJsonContentType(req.headers['content-type'] ?? '')) {
          sendRpcError(res, 415, RPC_INVALID_REQUEST, 'Unsupported Media Type: POST /mcp with Content-Type: application/json.');
          return;
        }
        if (isListenRequest(body) && !admitListener(req, res, agent.agent)) return;
        await answerModern(req, res, body);
        return;
      }
    }
    if (options.stateless === true) {
      await answerStateless(req, res, body);
      return;
    }

    if (inSession) {
      const session: Session | undefined = sessions.get(sessionId);
      if (!session) {
        sendRpcError(res, 404, RPC_SESSION_NOT_FOUND, 'Session not found: it was closed, it expired after being idle, or the server restarted. Start a new session (initialize).');
        return;
      }
      if (session.agent !== agent.agent) {
        await refuse(req, res, { status: 403, reason: 'session_agent_mismatch', message: `This session belongs to another agent; agent "${agent.agent}" must open its own session.`, agent: agent.agent });
        return;
      }
      sessions.touch(session);
      if (req.method === 'POST') {
        const read = await readRpcBody(req, res);
        if (!read.ok) return;
        body = read.body;
      }
      await session.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST') {
      sendRpcError(res, 400, RPC_REFUSED, 'Bad Request: an Mcp-Session-Id header is required; start a session with an initialize request first.');
      return;
    }
    const messages = Array.isArray(body) ? body : [body];
    if (!messages.some((message) => isInitializeRequest(message))) {
      sendRpcError(res, 400, RPC_REFUSED, 'Bad Request: an Mcp-Session-Id header is required; start a session with an initialize request (2025-11-25), or send each request with its _meta envelope (2026-07-28).');
      return;
    }
    await openSession(req, res, agent.agent, body);
  };

  const handleWebhook = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let id: string | null = null;
    try {
      id = new URLSearchParams((await readBody(req, MAX_WEBHOOK_BODY)).toString('utf8')).get('id');
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
    }
    const ours = id !== null && isResourceId('payment', id) && engine.payments.get(id) !== null;
    const admitted = ours && knownPaymentLimit.admit(id!).record ? ({ record: true } as const) : webhookLimit.admit(sourceOf(req));
    if (!admitted.record) {
      // Mollie retries a webhook it could not deliver; a flood from elsewhere is counted, not written row by row.
      webhookLimit.note(sourceOf(req), 'over_limit');
      tooMany(res, admitted.retryAfterSeconds, 'Too many webhook requests from this address; try again later.');
      return;
    }
    const answer = await webhook.receive(id, 'mollie');
    // The same empty 200 whatever the id was: the sender learns nothing about which payments exist.
    res.writeHead(answer.status, { 'Content-Type': 'text/plain', ...(answer.status === 503 ? { 'Retry-After': '60' } : {}) }).end();
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = pathOf(req);
    if (stopping) {
      sendRpcError(res, 503, RPC_REFUSED, 'The server is shutting down; reconnect in a moment.', undefined, { Connection: 'close', 'Retry-After': '5' });
      return;
    }
    const problem = checkHeaders(req.headers, rules);
    if (problem) {
      if (path === MCP_PATH) await refuse(req, res, { status: 403, reason: problem.reason, message: problem.message, agent: null });
      else if (!refusalLimit.admit(sourceOf(req)).record) {
        refusalLimit.note(sourceOf(req), problem.reason);
        sendJson(res, 403, { error: problem.message });
      } else {
        logger.warn({ reason: problem.reason, path: path.slice(0, 100), remote_address: req.socket.remoteAddress }, 'HTTP request refused');
        sendJson(res, 403, { error: problem.message });
      }
      return;
    }
    if (path === MCP_PATH) {
      // An origin that passed the check above may read the answers from a browser page (the Inspector's web UI).
      if (req.headers.origin !== undefined) {
        res.setHeader('Access-Control-Allow-Origin', req.headers.origin);
        res.setHeader('Vary', 'Origin');
        res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, WWW-Authenticate');
      }
      if (req.method === 'OPTIONS' && req.headers.origin !== undefined) {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': 'GET, POST, DELETE',
          'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID',
          'Access-Control-Max-Age': '600',
        }).end();
        return;
      }
      if (!['GET', 'POST', 'DELETE'].includes(req.method ?? '')) {
        sendRpcError(res, 405, RPC_REFUSED, 'Method not allowed: use POST, GET or DELETE on /mcp.', undefined, { Allow: 'GET, POST, DELETE' });
        return;
      }
      await handleMcp(req, res);
      return;
    }
    if (path === CONSOLE_PATH || path.startsWith(`${CONSOLE_PATH}/`)) {
      await consoleSite.serve(req, res, path);
      return;
    }
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendJson(res, 200, { status: 'ok', version: VERSION });
      return;
    }
    // Only where Mollie was told to post: without MOLLIE_MCP_WEBHOOK_URL nothing sends webhooks here but strangers.
    if (path === WEBHOOK_PATH && req.method === 'POST' && options.webhookUrl !== null) {
      await handleWebhook(req, res);
      return;
    }
    if (checkout && path.startsWith(CHECKOUT_PATH) && (req.method === 'GET' || req.method === 'HEAD' || req.method === 'POST')) {
      await checkout.serve(req, res, path.slice(CHECKOUT_PATH.length));
      return;
    }
    sendJson(res, 404, { error: `Nothing here. The MCP endpoint is ${MCP_PATH}.` });
  };

  const httpServer = createServer((req, res) => {
    const handling = route(req, res).catch((error: unknown) => {
      logger.error({ err: error, path: pathOf(req).slice(0, 100) }, 'HTTP request failed unexpectedly');
      if (!res.headersSent) sendRpcError(res, 500, -32603, 'Internal error; the server log has the details.');
      else res.end();
    });
    if (req.method === 'POST') {
      answering.set(handling, req);
      void handling.finally(() => answering.delete(handling));
    }
  });
  // Slow or stuck clients do not keep connections (and shutdown) waiting forever.
  httpServer.headersTimeout = 20_000;
  httpServer.requestTimeout = 120_000;

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  const shownHost = ['0.0.0.0', '::'].includes(address.address) ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;

  let closing: Promise<void> | null = null;
  const close = (why: string): Promise<void> => {
    closing ??= (async () => {
      stopping = true;
      logger.info({ why, in_flight: answering.size }, 'Stopping: no new requests, letting calls in flight finish');
      httpServer.close();
      const deadline = Date.now() + options.shutdownGraceMs;
      const finished = await engine.gate.settled(options.shutdownGraceMs);
      // The gate is done; give the answers time to reach their clients.
      const answers = (): Promise<void>[] => [...answering].filter(([, req]) => !listening.has(req)).map(([handling]) => handling);
      while (answers().length > 0 && Date.now() < deadline) {
        await Promise.race([Promise.allSettled(answers()), new Promise((resolve) => setTimeout(resolve, Math.max(1, deadline - Date.now())).unref())]);
      }
      if (!finished) logger.warn('Calls still in flight at shutdown; their outcome rows are missing and show as pending.');
      stopAnnouncing();
      // Ends the 2026-07-28 listen streams (each gets its closing result) and anything of theirs still open.
      await modern.close();
      await sessions.closeAll();
      httpServer.closeAllConnections();
      await refusalLimit.close();
      await webhookLimit.close();
      await knownPaymentLimit.close();
      engine.close();
      logger.info('Stopped');
    })();
    return closing;
  };

  return { url, close };
}

function mayBeModern(req: IncomingMessage, body: unknown): boolean {
  const header = req.headers['mcp-protocol-version'];
  if (header !== undefined && !/^202[45]-/.test(String(header))) return true;
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((message) => {
    const meta = (message as { params?: { _meta?: unknown } } | null)?.params?._meta;
    return typeof meta === 'object' && meta !== null && PROTOCOL_VERSION_META_KEY in meta;
  });
}

function isListenRequest(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((message) => typeof message === 'object' && message !== null && (message as { method?: unknown }).method === 'subscriptions/listen');
}

/** Which tools each agent may list in this mode, as one string to compare. */
function toolLists(engine: Engine): string {
  return [...engine.policies.agents.values()]
    .map((agent) => `${agent.agent}:${agent.modes.includes(engine.mollie.mode) ? [...agent.tools.keys()].sort().join(',') : ''}`)
    .sort()
    .join(';');
}

/** The request's path without its query string, which is never logged or recorded. */
function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}
