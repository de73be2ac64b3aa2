/**
 * stdio: one agent per process, named by MOLLIE_MCP_AGENT; stdout carries only the protocol. The client's first
 * message picks the protocol generation (2025-11-25 initialize, or a 2026-07-28 request) and the connection keeps it.
 */
import { serveStdio as serveEitherEra, StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import type { Logger } from 'pino';
import type { Engine } from '../engine.js';
import type { Caller } from '../policy/decide.js';
import { createMcpServer } from '../server.js';

/** How long calls in flight may take to finish after the client goes away. */
const SHUTDOWN_GRACE_MS = 15_000;

/** `callsWaitFor`: what tool calls need first (the simulator's checkout page, whose address their links name). */
export async function serveStdio(engine: Engine, caller: Caller, logger: Logger, callsWaitFor?: Promise<unknown>): Promise<void> {
  const transport = new StdioServerTransport();
  await new Promise<void>((resolve) => {
    let closed = false;
    const close = (why: string): void => {
      if (closed) return;
      closed = true;
      logger.info({ why }, 'Stopping');
      void engine.gate
        .settled(SHUTDOWN_GRACE_MS)
        .then((finished) => {
          if (!finished) logger.warn('Calls still in flight at shutdown; their outcome rows are missing and show as pending.');
          return connection.close();
        })
        .finally(() => {
          engine.close();
          resolve();
        });
    };
    const connection = serveEitherEra(
      ({ era }) =>
        createMcpServer({
          gate: engine.gate,
          caller: () => caller,
          transport: 'stdio',
          era,
          policiesChanged: engine.onPoliciesChanged,
          ...(callsWaitFor ? { callsWaitFor } : {}),
        }),
      { transport, onerror: (error) => logger.debug({ err: error }, 'MCP connection error') },
    );
    // The entry owns the transport's onclose; ours runs after its own.
    const theirs = transport.onclose;
    transport.onclose = () => {
      theirs?.();
      close('client disconnected');
    };
    process.stdin.on('end', () => close('stdin closed'));
    process.once('SIGINT', () => close('SIGINT'));
    process.once('SIGTERM', () => close('SIGTERM'));
  });
}
