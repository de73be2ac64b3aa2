/**
 * A refund that needs a person's approval must never go through without one, even when another process changes the
 * budgets between the check before asking (which denied the call, so nobody was asked) and the decision transaction.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Approvals } from '../../src/approvals/approvals.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/database.js';
import { Gate } from '../../src/gate.js';
import { MollieSimulator } from '../../src/mollie/simulator.js';
import { PaymentRecords } from '../../src/payments/payment-records.js';
import { loadPolicies } from '../../src/policy/load-policies.js';
import { Reservations } from '../../src/policy/reservations.js';
import { TOOLS, TOOL_CAPABILITIES } from '../../tools/index.js';

const directory = mkdtempSync(join(tmpdir(), 'mim-race-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Budgets as another process would change them: full at the first look, empty at the second. */
class ShiftingBudgets extends Reservations {
  private looks = 0;
  override reservedSince(agent: string, tool: string, currency: string, sinceIso: string): { minor: number; count: number } {
    this.looks += 1;
    return this.looks === 1 ? { minor: 100_000, count: 1 } : super.reservedSince(agent, tool, currency, sinceIso);
  }
}

describe('approval and a budget that changes under the check', () => {
  it('refuses the call instead of letting it through unapproved', async () => {
    writeFileSync(join(directory, 'desk.yaml'), 'agent: desk\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "500.00", per_day: "1000.00", confirm_above: "100.00" }\n');
    const db = openDatabase(join(directory, 'race.db'));
    const audit = new AuditLog(db);
    const simulator = new MollieSimulator();
    const payment = await simulator.createPayment({ amount: { value: '500.00', currency: 'EUR' }, description: 'Race' }, { idempotencyKey: 'race' });
    simulator.simulate(payment.id, 'paid');
    const policies = loadPolicies(directory, TOOL_CAPABILITIES);
    const gate = new Gate({
      db,
      audit,
      reservations: new ShiftingBudgets(db),
      approvals: new Approvals(db, audit),
      approvalSettings: { ttlMs: 60_000, confirmTimeoutMs: 1_000, askInClient: true },
      payments: new PaymentRecords(db),
      mollie: simulator,
      policies: () => policies,
      settings: { redirectUrl: null, webhookUrl: null, linkValidDays: 30 },
      tools: TOOLS,
      logger: pino({ level: 'silent' }),
    });
    const reply = await gate.call({ caller: { agent: 'desk', token: null }, transport: 'in-process', clientName: null }, 'refund', { payment_id: payment.id, amount: '200.00' });
    expect(reply.isError).toBe(true);
    expect(reply.structuredContent.error).toMatchObject({ code: 'policy_denied', reason: 'approval_required' });
    expect(await simulator.listRefunds(payment.id)).toEqual([]);
    db.close();
  });
});
