import { it } from 'vitest';
import { freshDatabase } from '../support/postgres.js';
import { PostgresDatabase } from '../../src/store/postgres/pg-database.js';
import { parseDatabaseUrl } from '../../src/store/database-url.js';
import { consoleFigures } from '../../src/console/console-figures.js';
import { buildStory } from '../../src/audit/story.js';
import { listCalls } from '../../src/audit/call-entries.js';
import { checkBudgets } from '../../src/audit/budget-check.js';
import { AuditLog } from '../../src/audit/audit-log.js';
it('debug', async () => {
  const d = await freshDatabase();
  const db = new PostgresDatabase(parseDatabaseUrl(d.ownerUrl), { appVersion: 't' }) as any;
  const audit = new AuditLog(db);
  audit.append({ call_id: 'c1', kind: 'decision', agent: 'a', tool: 'refund', decision: 'denied', reason: 'approval_required', payment_id: 'tr_abcdefghij', invoice_id: 'INV-1' });
  for (const [name, f] of [
    ['figures', () => consoleFigures(db, new Date())],
    ['story tr', () => buildStory(db, 'tr_abcdefghij')],
    ['story inv', () => buildStory(db, 'INV-1')],
    ['story pl', () => buildStory(db, 'pl_abcdefghij')],
    ['list', () => listCalls(db, {}, 10)],
    ['list outcome unknown', () => listCalls(db, { outcome: 'unknown' } as any, 10)],
    ['list pending', () => listCalls(db, { outcome: 'pending' } as any, 10)],
    ['list since', () => listCalls(db, { since: '2020-01-01T00:00:00Z', agent: 'a', tool: 'refund' } as any, 10)],
    ['budgets', () => checkBudgets(db)],
  ] as const) {
    try { const r = (f as () => unknown)(); console.log(name, 'OK', JSON.stringify(r).slice(0, 200)); } catch (e) { console.log(name, 'FAIL', (e as Error).message); }
  }
  db.close();
});
