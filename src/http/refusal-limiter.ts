/**
 * Refused HTTP requests (no token, a wrong one, a bad Host or Origin) and webhooks cost the sender nothing and each
 * wrote two fsynced audit rows: a flood from one address grew the database by gigabytes an hour. Each source now has a
 * budget (a token bucket); past it, requests are answered 429 with Retry-After and written down together: one audit
 * event per source and interval, with the count and the reasons. That refusals happened is never lost; only the
 * row per request is.
 */
import type { Logger } from 'pino';

export interface LimiterSettings {
  /** Requests a source may make at once before it is slowed down... */
  burst: number;
  /** ...and per minute after that. */
  perMinute: number;
}

/** Refused requests to /mcp and the other pages: an honest client is refused a few times at most. */
export const REFUSALS: LimiterSettings = { burst: 20, perMinute: 20 };
/** Webhooks: Mollie sends one per payment change, so a busy account sends many; a flood is far more. */
export const WEBHOOKS: LimiterSettings = { burst: 300, perMinute: 600 };
/** Webhooks naming one payment this server made: Mollie sends one per change of it, and retries. */
export const KNOWN_PAYMENT_WEBHOOKS: LimiterSettings = { burst: 10, perMinute: 10 };

/** How often the counts of requests answered without their own rows are written. */
const SUMMARY_EVERY_MS = 60_000;
/** Sources are forgotten this long after their last request; at most this many are tracked at once. */
const FORGET_AFTER_MS = 10 * 60_000;
const MAX_SOURCES = 10_000;
/** Sources over the limit share one bucket; their summary says how many there were. */
const OVERFLOW = 'many sources';

interface Bucket {
  tokens: number;
  at: number;
}

interface Summary {
  count: number;
  reasons: Map<string, number>;
  first: number;
  last: number;
}

export type Admission = { record: true } | { record: false; retryAfterSeconds: number };

export interface SummaryEvent {
  source: string;
  kind: string;
  count: number;
  reasons: Record<string, number>;
  first: string;
  last: string;
}

export class RefusalLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly summaries = new Map<string, Summary>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly kind: string,
    private readonly settings: LimiterSettings,
    /** Writes one summary event; the limiter keeps counting if it throws, and tries again at the next interval. */
    private readonly writeSummary: (event: SummaryEvent) => Promise<unknown>,
    private readonly logger: Logger,
    private readonly clock: () => number = () => Date.now(),
  ) {
    this.timer = setInterval(() => void this.flush(), SUMMARY_EVERY_MS);
    this.timer.unref();
  }

  /** Whether this request from `source` gets its own audit rows (and log line), or is only counted. */
  admit(source: string): Admission {
    const now = this.clock();
    const key = this.buckets.has(source) || this.buckets.size < MAX_SOURCES ? source : OVERFLOW;
    const bucket = this.buckets.get(key) ?? { tokens: this.settings.burst, at: now };
    bucket.tokens = Math.min(this.settings.burst, bucket.tokens + ((now - bucket.at) * this.settings.perMinute) / 60_000);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { record: true };
    }
    return { record: false, retryAfterSeconds: Math.max(1, Math.ceil(((1 - bucket.tokens) * 60) / this.settings.perMinute)) };
  }

  /** A request answered without its own rows: counted for the next summary. */
  note(source: string, reason: string): void {
    const now = this.clock();
    const key = this.summaries.has(source) || this.summaries.size < MAX_SOURCES ? source : OVERFLOW;
    const summary = this.summaries.get(key) ?? { count: 0, reasons: new Map(), first: now, last: now };
    summary.count += 1;
    summary.last = now;
    summary.reasons.set(reason, (summary.reasons.get(reason) ?? 0) + 1);
    this.summaries.set(key, summary);
  }

  /** Writes every pending summary, and forgets quiet sources. */
  async flush(): Promise<void> {
    const now = this.clock();
    for (const [source, summary] of [...this.summaries]) {
      // Taken out while it is written; requests noted meanwhile start a new summary, merged back if the write fails.
      this.summaries.delete(source);
      try {
        await this.writeSummary(this.eventOf(source, summary));
      } catch (error) {
        this.logger.error({ err: error, source, count: summary.count }, 'Could not write the summary of refused requests; it is kept and written at the next interval');
        const later = this.summaries.get(source);
        if (later) {
          summary.count += later.count;
          for (const [reason, count] of later.reasons) summary.reasons.set(reason, (summary.reasons.get(reason) ?? 0) + count);
          summary.last = later.last;
        }
        this.summaries.set(source, summary);
      }
    }
    for (const [source, bucket] of this.buckets) if (now - bucket.at > FORGET_AFTER_MS) this.buckets.delete(source);
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return this.flush();
  }

  /** At a synchronous shutdown: each pending summary is handed to writeSummary at once, nothing awaited. */
  closeNow(): void {
    clearInterval(this.timer);
    for (const [source, summary] of this.summaries) {
      try {
        void Promise.resolve(this.writeSummary(this.eventOf(source, summary))).catch((error: unknown) => this.lost(error, source, summary));
      } catch (error) {
        this.lost(error, source, summary);
      }
    }
    this.summaries.clear();
  }

  private eventOf(source: string, summary: Summary): SummaryEvent {
    return {
      source,
      kind: this.kind,
      count: summary.count,
      reasons: Object.fromEntries(summary.reasons),
      first: new Date(summary.first).toISOString(),
      last: new Date(summary.last).toISOString(),
    };
  }

  private lost(error: unknown, source: string, summary: Summary): void {
    this.logger.error({ err: error, source, count: summary.count, reasons: Object.fromEntries(summary.reasons) }, 'Could not write the summary of refused requests at shutdown; its counts are in this log line');
  }
}
