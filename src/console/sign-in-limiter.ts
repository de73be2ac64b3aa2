/**
 * Wrong personal tokens slow the sender down: the first few mistakes are free (people mistype), then each further
 * attempt from that address must wait, twice as long each time, up to 15 minutes, and during the wait no token is
 * even compared. Attempts still being checked count as mistakes until they are settled, so a burst sent at once gets
 * no more tries than the same attempts one by one. Per address only: personal tokens are 256 random bits, so the
 * limit is about noise, and a limit over all addresses together would let anyone lock every approver out.
 */
export const FREE_FAILURES = 4;
const FIRST_WAIT_MS = 30_000;
const MAX_WAIT_MS = 15 * 60_000;
/** Failures are forgotten after this long without one. */
const FORGET_MS = 60 * 60_000;
const MAX_SOURCES = 10_000;

interface Record {
  failures: number;
  inFlight: number;
  lastFailureAt: number;
  blockedUntil: number;
}

/** One attempt let through: settle it exactly once. */
export interface SignInTicket {
  failed(): number;
  succeeded(): void;
  /** Ended before any token was compared (a form without its CSRF token, a body too large). */
  abandoned(): void;
}

export type SignInAdmission = { ok: true; ticket: SignInTicket } | { ok: false; retryAfterSeconds: number };

export class SignInLimiter {
  private readonly records = new Map<string, Record>();

  constructor(private readonly clock: () => number = () => Date.now()) {}

  /** Whether an attempt from `source` may have its token checked now. */
  admit(source: string): SignInAdmission {
    const now = this.clock();
    this.forget(now);
    const key = this.records.has(source) || this.records.size < MAX_SOURCES ? source : 'many sources';
    const record = this.records.get(key) ?? { failures: 0, inFlight: 0, lastFailureAt: now, blockedUntil: 0 };
    if (record.blockedUntil > now) return { ok: false, retryAfterSeconds: Math.ceil((record.blockedUntil - now) / 1000) };
    // Past the free mistakes, one attempt at a time.
    if (record.inFlight > 0 && record.failures + record.inFlight > FREE_FAILURES) return { ok: false, retryAfterSeconds: 1 };
    record.inFlight += 1;
    this.records.set(key, record);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      record.inFlight -= 1;
      return true;
    };
    return {
      ok: true,
      ticket: {
        failed: () => {
          if (!settle()) return record.failures;
          const at = this.clock();
          record.failures += 1;
          record.lastFailureAt = at;
          if (record.failures > FREE_FAILURES) record.blockedUntil = at + Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (record.failures - FREE_FAILURES - 1));
          return record.failures;
        },
        succeeded: () => {
          if (settle() && record.inFlight === 0) this.records.delete(key);
        },
        abandoned: () => {
          settle();
        },
      },
    };
  }

  private forget(now: number): void {
    for (const [key, record] of this.records) if (record.inFlight === 0 && now - record.lastFailureAt > FORGET_MS && record.blockedUntil <= now) this.records.delete(key);
  }
}
