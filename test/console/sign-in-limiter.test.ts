/** Wrong personal tokens: four free, then the address waits, twice as long each time. */
import { describe, expect, it } from 'vitest';
import { SignInLimiter } from '../../src/console/sign-in-limiter.js';

describe('the sign-in limiter', () => {
  it('lets four mistakes pass, then makes the address wait 30 s, 60 s, ... up to 15 minutes', () => {
    let now = 0;
    const limiter = new SignInLimiter(() => now);
    for (let i = 0; i < 5; i += 1) {
      expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
      limiter.failed('10.0.0.1');
    }
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 30 });
    // Another address is not slowed by this one.
    expect(limiter.admit('10.0.0.2')).toEqual({ ok: true });
    now += 30_000;
    limiter.failed('10.0.0.1');
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 60 });
    for (let i = 0; i < 10; i += 1) {
      now += 15 * 60_000;
      limiter.failed('10.0.0.1');
    }
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 900 });
    now += 15 * 60_000;
    limiter.succeeded('10.0.0.1');
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
  });

  it('keeps only addresses with failures, and forgets the stalest when full instead of sharing one entry', () => {
    let now = 0;
    const limiter = new SignInLimiter(() => now, 100);
    for (let i = 0; i < 5; i += 1) limiter.failed('10.0.0.9');
    expect(limiter.admit('10.0.0.9').ok).toBe(false);
    // A hundred other addresses, five wrong tokens each: the table fills, and no address is blocked for another's.
    for (let a = 0; a < 100; a += 1) {
      now += 1;
      for (let i = 0; i < 5; i += 1) limiter.failed(`10.1.0.${a}`);
    }
    expect(limiter.admit('192.168.7.7')).toEqual({ ok: true });
    expect(limiter.admit('10.1.0.99').ok).toBe(false);
  });
});
