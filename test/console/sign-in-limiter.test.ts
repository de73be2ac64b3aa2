/** Wrong personal tokens: four free, then the address waits, twice as long each time, and a global limit on top. */
import { describe, expect, it } from 'vitest';
import { SignInLimiter } from '../../src/console/sign-in-limiter.js';

describe('the sign-in limiter', () => {
  it('lets four mistakes pass, then makes the address wait 30 s, 60 s, ... up to 15 minutes', () => {
    let now = 0;
    const limiter = new SignInLimiter(() => now);
    for (let i = 0; i < 4; i += 1) {
      expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
      limiter.failed('10.0.0.1');
    }
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
    limiter.failed('10.0.0.1');
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 30 });
    // Another address is not slowed by this one.
    expect(limiter.admit('10.0.0.2')).toEqual({ ok: true });
    now += 30_000;
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
    limiter.failed('10.0.0.1');
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 60 });
    for (let i = 0; i < 10; i += 1) limiter.failed('10.0.0.1');
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 900 });
    limiter.succeeded('10.0.0.1');
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
  });

  it('slows everyone once more than 50 wrong tokens came from all addresses together', () => {
    let now = 0;
    const limiter = new SignInLimiter(() => now);
    for (let i = 0; i < 51; i += 1) limiter.failed(`10.0.${Math.floor(i / 200)}.${i % 200}`);
    expect(limiter.admit('192.168.1.1')).toEqual({ ok: false, retryAfterSeconds: 30 });
    now += 30_000;
    expect(limiter.admit('192.168.1.1')).toEqual({ ok: true });
  });
});
