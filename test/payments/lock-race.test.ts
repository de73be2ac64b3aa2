/**
 * Calls of one process on one invoice take turns: a call that has just taken the invoice is already counted as
 * active, so another call of the same process looking at the invoice at that moment waits for it rather than taking
 * its row for a leftover of a stopped call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorld, type World } from '../support/engine-world.js';

let world: World;
afterEach(() => world?.close());

describe('identical calls racing in one process', () => {
  it('make one link per invoice; neither loses its turn', async () => {
    world = makeWorld();
    for (let round = 0; round < 10; round += 1) {
      const args = { invoice_id: `RACE-${round}`, amount: '75.00' };
      // The second starts a little later each round, so it looks at the invoice at every point of the first's turn.
      const first = world.call('clerk', 'create_invoice_payment', args);
      for (let tick = 0; tick < round; tick += 1) await Promise.resolve();
      const replies = await Promise.all([first, world.call('clerk', 'create_invoice_payment', args)]);
      expect(replies.map((reply) => reply.isError ? JSON.stringify(reply.structuredContent) : 'ok')).toEqual(['ok', 'ok']);
      expect(replies[0]!.structuredContent.payment_link_id).toBe(replies[1]!.structuredContent.payment_link_id);
    }
  });
});
