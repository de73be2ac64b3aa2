/** The numbers behind the console's charts: 30 days of money moved per agent and of denials, and the chain's head. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/database.js';
import { consoleFigures, dayList } from '../../src/console/console-figures.js';

const directory = mkdtempSync(join(tmpdir(), 'mim-figures-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('the console figures', () => {
  it('sum what each agent spent per day over the last 30 days, count denials per day, and show the chain head', () => {
    const db = openDatabase(join(directory, 'figures.db'));
    const now = new Date('2026-12-02T12:00:00Z');
    let clock = new Date('2026-10-01T00:00:00Z');
    const audit = new AuditLog(db, () => clock);
    const reserve = db.prepare("INSERT INTO reservations (call_id, agent, tool, currency, amount_minor, reserved_at, state) VALUES (?, ?, ?, ?, ?, ?, ?)");
    const call = (day: string, agent: string, tool: string, minor: number, state: string, currency = 'EUR', denied = false): void => {
      clock = new Date(`${day}T10:00:00Z`);
      const row = audit.append({ call_id: randomUUID(), kind: 'decision', agent, tool, decision: denied ? 'denied' : 'allowed', reason: denied ? 'per_call_exceeded' : 'allowed' });
      if (!denied) reserve.run(row.call_id, agent, tool, currency, minor, row.at, state);
    };
    call('2026-10-20', 'billing-bot', 'create_invoice_payment', 99_900, 'spent'); // more than 30 days ago
    call('2026-11-10', 'billing-bot', 'create_invoice_payment', 10_050, 'spent');
    call('2026-11-10', 'billing-bot', 'create_invoice_payment', 2_000, 'spent');
    call('2026-11-10', 'billing-bot', 'create_invoice_payment', 5_000, 'released'); // came to nothing
    call('2026-11-11', 'refund-desk', 'refund', 8_000, 'spent');
    call('2026-11-11', 'refund-desk', 'refund', 120, 'spent', 'JPY');
    call('2026-11-11', 'refund-desk', 'refund', 0, 'spent', 'EUR', true);
    call('2026-12-02', 'refund-desk', 'refund', 0, 'spent', 'EUR', true);
    call('2026-12-02', 'refund-desk', 'refund', 0, 'spent', 'EUR', true);

    // A call that only waited for a person's approval is drawn apart from the denials.
    clock = new Date('2026-12-02T11:00:00Z');
    audit.append({ call_id: randomUUID(), kind: 'decision', agent: 'refund-desk', tool: 'refund', decision: 'denied', reason: 'approval_required' });

    const figures = consoleFigures(db, now);
    expect(figures.days).toEqual(dayList(now));
    expect(figures.days[0]).toBe('2026-11-03');
    expect(figures.days.at(-1)).toBe('2026-12-02');
    const at = (day: string): number => figures.days.indexOf(day);
    expect(figures.money.map((series) => series.currency)).toEqual(['EUR', 'JPY']);
    const eur = figures.money[0]!;
    expect(eur.decimals).toBe(2);
    expect(eur.byAgent.map((series) => `${series.agent}/${series.tool}`)).toEqual(['billing-bot/create_invoice_payment', 'refund-desk/refund']);
    expect(eur.byAgent[0]!.minor[at('2026-11-10')]).toBe(12_050);
    expect(eur.byAgent[0]!.minor.reduce((a, b) => a + b, 0)).toBe(12_050);
    expect(eur.byAgent[1]!.minor[at('2026-11-11')]).toBe(8_000);
    expect(figures.money[1]).toMatchObject({ currency: 'JPY', decimals: 0 });
    expect(figures.denials[at('2026-11-11')]).toBe(1);
    expect(figures.denials[at('2026-12-02')]).toBe(2);
    expect(figures.denials.reduce((a, b) => a + b, 0)).toBe(3);
    expect(figures.approvalWaits[at('2026-12-02')]).toBe(1);
    expect(figures.approvalWaits.reduce((a, b) => a + b, 0)).toBe(1);
    expect(figures.chain).toMatchObject({ rows: 10, lastVerify: null });
    db.close();
  });
});
