/**
 * Console sessions: a random id in an HttpOnly, SameSite=Strict cookie, a CSRF token per session, an idle expiry and
 * an absolute one. Only the sha256 of a session id is kept, so the table is no list of live cookies. Sessions live in
 * this process: a restart signs everyone out, which is the safe direction.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ConsoleSession {
  person: string;
  /** The person's token_sha256 at sign-in: a changed or removed token ends the session. */
  tokenSha256: string;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  /** One message for the next page shown (after a redirect). */
  flash: { kind: 'ok' | 'error'; text: string } | null;
}

/** A signed-in session lasts at most this long, however active. */
const ABSOLUTE_MS = 12 * 60 * 60_000;
const MAX_SESSIONS = 1000;

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(
    readonly idleMs: number,
    private readonly clock: () => number = () => Date.now(),
  ) {}

  /** A new session for the person; returns the id for the cookie (never stored itself). */
  open(person: string, tokenSha256: string): { id: string; session: ConsoleSession } {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = [...this.sessions.entries()].sort((a, b) => a[1].lastSeenAt - b[1].lastSeenAt)[0];
      if (oldest) this.sessions.delete(oldest[0]);
    }
    const id = randomToken();
    const now = this.clock();
    const session: ConsoleSession = { person, tokenSha256, csrf: randomToken(), createdAt: now, lastSeenAt: now, flash: null };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session for a cookie's id, touched; null when unknown or expired (then it is forgotten). */
  get(id: string | null): ConsoleSession | null {
    if (id === null || !/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const key = digest(id);
    const session = this.sessions.get(key);
    if (!session) return null;
    const now = this.clock();
    if (now - session.lastSeenAt > this.idleMs || now - session.createdAt > ABSOLUTE_MS) {
      this.sessions.delete(key);
      return null;
    }
    session.lastSeenAt = now;
    return session;
  }

  close(id: string | null): void {
    if (id !== null) this.sessions.delete(digest(id));
  }

  private sweep(): void {
    const now = this.clock();
    for (const [key, session] of this.sessions) {
      if (now - session.lastSeenAt > this.idleMs || now - session.createdAt > ABSOLUTE_MS) this.sessions.delete(key);
    }
  }
}
