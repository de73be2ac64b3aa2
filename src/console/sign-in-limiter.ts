/**
 * Wrong personal tokens slow the sender down: the first few mistakes are free (people mistype), then each further
 * attempt from that address must wait, twice as long each time, up to 15 minutes, and during the wait no token is
 * even compared. A limit over all addresses together stops a guesser spread over many.
 */
export const FREE_FAILURES = 4;
const FIRST_WAIT_MS = 30_000;
const MAX_WAIT_MS = 15 * 60_000;
/** Failures are forgotten after this long without one. */
const FORGET_MS = 60 * 60_000;
/** All sources together: past this many failures within FORGET_MS, everyone waits. */
const GLOBAL_FREE = 50;
const ALL = '*';
const MAX_SOURCES = 10_000;

interface Record {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

export type SignInAdmission = { ok: true } | { ok: false; retryAfterSeconds: number };

export class SignInLimiter {
  private readonly records = new Map<string, Record>();

  constructor(private readonly clock: () => number = () => Date.now()) {}

  /** Whether an attempt from `source` may have its token checked now. */
  admit(source: string): SignInAdmission {
    const now = this.clock();
    const waits = [this.records.get(source), this.records.get(ALL)].map((record) => (record && record.blockedUntil > now ? record.blockedUntil - now : 0));
    const wait = Math.max(...waits);
    return wait > 0 ? { ok: false, retryAfterSeconds: Math.ceil(wait / 1000) } : { ok: true };
  }

  /** A wrong token: counted, and from the fifth on, the source must wait before trying again. */
  failed(source: string): number {
    const now = this.clock();
    this.count(ALL, now, GLOBAL_FREE);
    return this.count(this.records.has(source) || this.records.size < MAX_SOURCES ? source : 'many sources', now, FREE_FAILURES);
  }

  succeeded(source: string): void {
    this.records.delete(source);
  }

  private count(key: string, now: number, free: number): number {
    for (const [other, record] of this.records) if (now - record.lastFailureAt > FORGET_MS) this.records.delete(other);
    const record = this.records.get(key) ?? { failures: 0, lastFailureAt: now, blockedUntil: 0 };
    record.failures += 1;
    record.lastFailureAt = now;
    if (record.failures > free) record.blockedUntil = now + Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (record.failures - free - 1));
    this.records.set(key, record);
    return record.failures;
  }
}
