/**
 * Wrong personal tokens slow the sender down: the first few mistakes are free (people mistype), then each further
 * attempt from that address must wait, twice as long each time, up to 15 minutes, and during the wait no token is
 * even compared. The console reads the whole form before it asks, then checks and settles with nothing in between,
 * so attempts sent at once are counted one by one, and a request whose body never finishes holds nothing. Per address
 * only: personal tokens are 256 random bits, so the limit is about noise, and a limit over all addresses together
 * would let anyone lock every approver out. Only addresses with a failure are kept; when the table is full the
 * address whose last failure is oldest is forgotten.
 */
const FREE_FAILURES = 4;
const FIRST_WAIT_MS = 30_000;
const MAX_WAIT_MS = 15 * 60_000;
/** Failures are forgotten after this long without one. */
const FORGET_MS = 60 * 60_000;
const MAX_SOURCES = 10_000;

interface Record {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

export type SignInAdmission = { ok: true } | { ok: false; retryAfterSeconds: number };

export class SignInLimiter {
  private readonly records = new Map<string, Record>();

  constructor(
    private readonly clock: () => number = () => Date.now(),
    private readonly maxSources = MAX_SOURCES,
  ) {}

  /** Whether an attempt from `source` may have its token checked now. Call failed() or succeeded() right after. */
  admit(source: string): SignInAdmission {
    const record = this.records.get(source);
    const now = this.clock();
    if (record && record.blockedUntil > now) return { ok: false, retryAfterSeconds: Math.ceil((record.blockedUntil - now) / 1000) };
    return { ok: true };
  }

  /** A wrong token: counted, and from the fifth on, the source must wait before trying again. */
  failed(source: string): number {
    const now = this.clock();
    let record = this.records.get(source);
    if (!record) {
      this.makeRoom(now);
      record = { failures: 0, lastFailureAt: now, blockedUntil: 0 };
      this.records.set(source, record);
    }
    record.failures += 1;
    record.lastFailureAt = now;
    // Moved to the end: the map's first entry is then always the one whose last failure is oldest.
    this.records.delete(source);
    this.records.set(source, record);
    if (record.failures > FREE_FAILURES) record.blockedUntil = now + Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (record.failures - FREE_FAILURES - 1));
    return record.failures;
  }

  succeeded(source: string): void {
    this.records.delete(source);
  }

  private makeRoom(now: number): void {
    if (this.records.size < this.maxSources) return;
    for (const [key, record] of this.records) if (now - record.lastFailureAt > FORGET_MS && record.blockedUntil <= now) this.records.delete(key);
    if (this.records.size < this.maxSources) return;
    // Maps keep insertion order, and a record is re-inserted at each failure below: the first is the stalest.
    const stalest = this.records.keys().next().value;
    if (stalest !== undefined) this.records.delete(stalest);
  }
}
