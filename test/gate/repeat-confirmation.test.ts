/**
 * The gate's side of confirmation by repeat (MCP 2026-07-28), with an injected clock: a question and its repeat are
 * one call for the rate limit, counted when the call is decided, not when it asked.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CallOrigin } from '../../src/gate.js';
import { makeWorld, type World } from '../support/engine-world.js';

const RATED = `agent: rated
confirm_in_client: true
rate_limit: { per_minute: 2 }
tools:
  get_payment_status: {}
  refund:
    limits:
      EUR: { per_call: "1000.00", confirm_above: "100.00" }
`;

let world: World;
afterEach(() => world?.close());

const origin = (answer: { token: string; answer: 'accepted' } | null): CallOrigin => ({
  caller: { agent: 'rated', token: null },
  transport: 'in-process',
  clientName: 'new-client',
  confirm: { kind: 'repeat', answer },
});

describe('a question and its repeat under a rate limit', () => {
  it('count once, in the minute the call is decided: a repeat a minute after its question is not free', async () => {
    world = makeWorld({ rated: RATED });
    const payment = await world.simulator.createPayment({ amount: { value: '500.00', currency: 'EUR' }, description: 'Invoice R' }, { idempotencyKey: 'rated-1' });
    world.simulator.simulate(payment.id, 'paid');
    const args = { payment_id: payment.id, amount: '300.00' };

    const asked = await world.engine.gate.call(origin(null), 'refund', args);
    expect(asked.inputRequired?.token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The person answers 61 s later (within the 120 s the question is open), and the refund goes out then.
    world.now.ms += 61_000;
    const refunded = await world.engine.gate.call(origin({ token: asked.inputRequired!.token, answer: 'accepted' }), 'refund', args);
    expect(refunded.isError).toBe(false);

    // Two calls a minute: the refund is one of this minute's, so one more call passes and the next does not.
    const status = (): Promise<{ isError: boolean; structuredContent: Record<string, unknown> }> => world.engine.gate.call({ ...origin(null), confirm: null }, 'get_payment_status', { payment_id: payment.id });
    expect((await status()).isError).toBe(false);
    expect((await status()).structuredContent.error).toMatchObject({ code: 'policy_denied', reason: 'rate_limit_exceeded' });
  });
});
