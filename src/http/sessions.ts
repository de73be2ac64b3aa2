/**
 * MCP sessions over HTTP: each has a cryptographically random id, its own MCP server and transport, and belongs to the
 * agent that opened it; no other agent's token can use it. Idle sessions are closed, and the number of open ones is
 * bounded so a client that never says goodbye cannot exhaust the server.
 */
import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import type { Server } from '@modelcontextprotocol/server';

export interface Session {
  id: string;
  agent: string;
  server: Server;
  transport: NodeStreamableHTTPServerTransport;
  openedAt: number;
  lastSeenAt: number;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly idleMs: number,
    readonly capacity: number,
    private readonly onExpired: (session: Session) => void,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(60_000, Math.floor(idleMs / 4))));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  isFull(): boolean {
    return this.sessions.size >= this.capacity;
  }

  /** Sessions this agent has open. */
  countFor(agent: string): number {
    let count = 0;
    for (const session of this.sessions.values()) if (session.agent === agent) count += 1;
    return count;
  }

  add(session: Session): void {
    this.sessions.set(session.id, session);
  }

  /** The session; undefined when it never existed, was closed or expired. */
  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** Marks a session as just used by its own agent (another agent's refused attempt does not keep it alive). */
  touch(session: Session, now = Date.now()): void {
    session.lastSeenAt = now;
  }

  remove(id: string): void {
    this.sessions.delete(id);
  }

  private sweep(now = Date.now()): void {
    for (const session of this.sessions.values()) {
      if (now - session.lastSeenAt >= this.idleMs) {
        this.sessions.delete(session.id);
        this.onExpired(session);
      }
    }
  }

  /** Closes every session (shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map((session) => session.server.close()));
  }
}
