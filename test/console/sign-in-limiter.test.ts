/** Wrong personal tokens: four free, then the address waits, twice as long each time; a burst gets no more tries. */
import { describe, expect, it } from 'vitest';
import { SignInLimiter, type SignInAdmission } from '../../src/console/sign-in-limiter.js';

const ticket = (admission: SignInAdmission) => {
  if (!admission.ok) throw new Error(`refused: ${admission.retryAfterSeconds}`);
  return admission.ticket;
};

describe('the sign-in limiter', () => {
  it('lets four mistakes pass, then makes the address wait 30 s, 60 s, ... up to 15 minutes', () => {
    let now = 0;
    const limiter = new SignInLimiter(() => now);
    for (let i = 0; i < 5; i += 1) ticket(limiter.admit('10.0.0.1')).failed();
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 30 });
    // Another address is not slowed by this one.
    expect(limiter.admit('10.0.0.2').ok).toBe(true);
    now += 30_000;
    ticket(limiter.admit('10.0.0.1')).failed();
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 60 });
    for (let i = 0; i < 10; i += 1) {
      now += 15 * 60_000;
      ticket(limiter.admit('10.0.0.1')).failed();
    }
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterSeconds: 900 });
    now += 15 * 60_000;
    ticket(limiter.admit('10.0.0.1')).succeeded();
    expect(limiter.admit('10.0.0.1').ok).toBe(true);
  });

  it('counts attempts still being checked: a hundred sent at once get five tries, not a hundred', () => {
    const limiter = new SignInLimiter(() => 0);
    const admitted = Array.from({ length: 100 }, () => limiter.admit('10.0.0.3')).filter((admission) => admission.ok);
    expect(admitted).toHaveLength(5);
    for (const admission of admitted) ticket(admission).failed();
    expect(limiter.admit('10.0.0.3')).toEqual({ ok: false, retryAfterSeconds: 30 });
  });

  it('gives an attempt that compared no token back', () => {
    const limiter = new SignInLimiter(() => 0);
    for (let i = 0; i < 20; i += 1) ticket(limiter.admit('10.0.0.4')).abandoned();
    expect(limiter.admit('10.0.0.4').ok).toBe(true);
  });
});
