/**
 * The reservations table is not hashed; audit verify derives every money-moving call's reservation from the hashed
 * rows and fails when the table says less was spent (hostile review, finding 8: DELETE FROM reservations handed the
 * day's budget back with no trace).
 */
import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkBudgets } from '../../src/audit/budget-check.js';
import { auditVerify } from '../../src/commands/audit.js';
import { MollieError } from '../../src/mollie/errors.js';
import { makeWorld, type World } from '../support/engine-world.js';

let world: World;
afterEach(() => world?.close());

/** A log with a created link, a reuse of it, a refund that went through and one whose outcome is unknown. */
async function busyDay(): Promise<{ db: string; refundCall: string; createCall: string; unknownCall: string }> {
  world = makeWorld();
  const made = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'B-1', amount: '100.00' });
  const reused = await world.call('clerk', 'create_invoice_payment', { invoice_id: 'B-1', amount: '100.00' });
  expect(reused.structuredContent).toMatchObject({ reused: true });
  const payment = world.simulator.payThroughLink(String(made.structuredContent.payment_link_id), 'paid');
  const refund = await world.call('clerk', 'refund', { payment_id: payment.id, amount: '30.00' });
  expect(refund.isError).toBeFalsy();
  world.after.createRefund = () => {
    throw new MollieError({ code: 'mollie_unavailable', message: 'socket hang up after the request was sent', retryable: true, effect: 'unknown' });
  };
  const lost = await world.call('clerk', 'refund', { payment_id: payment.id, amount: '20.00' });
  expect((lost.structuredContent.error as { code: string }).code).toBe('mollie_unavailable');
  world.engine.db.pragma('wal_checkpoint(TRUNCATE)');
  return { db: join(world.directory, 'audit.db'), createCall: String(made.structuredContent.audit_id), refundCall: String(refund.structuredContent.audit_id), unknownCall: String(lost.structuredContent.audit_id) };
}

function tampered(source: string, sql: string): Database.Database {
  const copy = `${source}.${Math.random().toString(36).slice(2)}.db`;
  copyFileSync(source, copy);
  const db = new Database(copy);
  db.exec(sql);
  return db;
}

describe('audit verify recomputes budgets from the hashed rows', () => {
  it('agrees with the reservations the server wrote: spent, released for a reuse, unknown while unknown', async () => {
    const day = await busyDay();
    expect(checkBudgets(world.engine.db)).toEqual({ ok: true, calls: 4 });
    const lines: string[] = [];
    expect(await auditVerify(day.db, '1', { out: (line) => lines.push(line), err: () => undefined })).toBe(0);
    expect(lines.join('\n')).toMatch(/Budgets match the log: the reservations of 4 money-moving call\(s\)/);
  });

  it('fails, naming the call, when reservations are deleted, released, shrunk or moved to another agent', async () => {
    const day = await busyDay();
    const cases: [string, string, RegExp][] = [
      ['DELETE FROM reservations', day.createCall, /its reservation is gone/],
      [`UPDATE reservations SET state = 'released' WHERE call_id = '${day.refundCall}'`, day.refundCall, /is released, but its rows say spent/],
      [`UPDATE reservations SET state = 'released' WHERE call_id = '${day.unknownCall}'`, day.unknownCall, /is released, but its rows say unknown/],
      [`UPDATE reservations SET amount_minor = 100 WHERE call_id = '${day.refundCall}'`, day.refundCall, /counts 100 minor units of EUR, the decision 30.00 EUR/],
      [`UPDATE reservations SET amount_minor = NULL WHERE call_id = '${day.createCall}'`, day.createCall, /counts nothing/],
      [`UPDATE reservations SET agent = 'someone-else' WHERE call_id = '${day.refundCall}'`, day.refundCall, /names agent "someone-else"/],
      // Found by the hostile pass of 0.5.0: dated back, it leaves the 24-hour budgets; marked approved, it stops counting
      // towards confirm_above; without its repeat key, the same refund is not caught as a duplicate.
      [`UPDATE reservations SET reserved_at = '2000-01-01T00:00:00.000Z' WHERE call_id = '${day.createCall}'`, day.createCall, /dated 2000-01-01T00:00:00.000Z, before its decision/],
      [`UPDATE reservations SET approved = 1 WHERE call_id = '${day.refundCall}'`, day.refundCall, /marked approved, but its decision \(allowed\) names no approval/],
      [`UPDATE reservations SET repeat_key = NULL WHERE call_id = '${day.refundCall}'`, day.refundCall, /repeat key is missing/],
    ];
    for (const [sql, callId, problem] of cases) {
      const db = tampered(day.db, sql);
      expect(checkBudgets(db), sql).toMatchObject({ ok: false, callId, problem: expect.stringMatching(problem) });
      const path = db.name;
      db.close();
      const lines: string[] = [];
      expect(await auditVerify(path, '1', { out: (line) => lines.push(line), err: () => undefined }), sql).toBe(1);
      expect(lines.join('\n')).toContain(`Budgets DO NOT MATCH the log at call ${callId}`);
    }
  });

  it('fails on a reservation no allowed decision made', async () => {
    const day = await busyDay();
    const db = tampered(day.db, "INSERT INTO reservations (call_id, agent, tool, currency, amount_minor, reserved_at, state) VALUES ('forged', 'clerk', 'refund', 'EUR', 1, '2026-12-01T09:00:00Z', 'spent')");
    expect(checkBudgets(db)).toMatchObject({ ok: false, callId: 'forged', problem: 'a reservation no allowed decision row made' });
    db.close();
  });
});
