import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AuditLog, type AuditRow } from '../../src/audit/audit-log.js';
import { decodeCursor, listCalls, SCAN_ROWS, type CallFilter } from '../../src/audit/call-entries.js';
import { openDatabase } from '../../src/database.js';

/**
 * list_logs reads a different index for each filter; whichever it reads, the page must be the calls a plain scan of
 * every row finds, newest first. The clock here jumps back now and then, as a machine's clock does after NTP.
 */
function buildLog(calls: number): { log: AuditLog; rows: AuditRow[] } {
  let now = Date.parse('2026-01-01T00:00:00Z');
  let tick = 0;
  const log = new AuditLog(openDatabase(':memory:'), () => {
    tick += 1;
    now += tick % 37 === 0 ? -90 * 60_000 : 60_000;
    return new Date(now);
  });
  for (let i = 0; i < calls; i++) {
    const callId = `call-${i}`;
    const agent = `agent-${i % 5}`;
    const tool = ['create_invoice_payment', 'get_payment_status', 'refund', 'list_logs'][i % 4]!;
    const denied = i % 7 === 0;
    const payment = `tr_p${i % 40}`;
    const invoice = `INV-${i % 30}`;
    const created = tool === 'create_invoice_payment';
    log.append({ call_id: callId, kind: 'decision', agent, tool, decision: denied ? 'denied' : 'allowed', invoice_id: created ? invoice : null, payment_id: created || tool === 'list_logs' ? null : payment });
    if (i % 11 === 5 && !denied) {
      // No outcome yet: pending. An allowed call is marked in flight in the decision's transaction, as the gate does.
      log.db.prepare('INSERT INTO open_reads (call_id, instance_id, opened_at) VALUES (?, ?, ?)').run(callId, 'test', '2026-01-01T00:00:00Z');
      continue;
    }
    log.append({ call_id: callId, kind: 'outcome', agent, tool, outcome: denied ? 'error' : i % 13 === 0 ? 'unknown' : 'ok', payment_id: created && !denied ? payment : null, invoice_id: created ? invoice : null });
  }
  return { log, rows: [...log.rows()] };
}

function reference(rows: AuditRow[], filter: CallFilter, limit: number, beforeSeq?: number): string[] {
  const outcomes = new Map(rows.filter((row) => row.kind === 'outcome').map((row) => [row.call_id, row]));
  return rows
    .filter((d) => d.kind === 'decision')
    .filter((d) => {
      const o = outcomes.get(d.call_id);
      if (filter.agent !== undefined && d.agent !== filter.agent) return false;
      if (filter.tool !== undefined && d.tool !== filter.tool) return false;
      if (filter.decision !== undefined && d.decision !== filter.decision) return false;
      if (filter.outcome === 'pending' && o) return false;
      if (filter.outcome !== undefined && filter.outcome !== 'pending' && o?.outcome !== filter.outcome) return false;
      if (filter.paymentId !== undefined && d.payment_id !== filter.paymentId && o?.payment_id !== filter.paymentId) return false;
      if (filter.invoiceId !== undefined && d.invoice_id !== filter.invoiceId && o?.invoice_id !== filter.invoiceId) return false;
      if (filter.since !== undefined && d.at < filter.since) return false;
      if (filter.until !== undefined && d.at >= filter.until) return false;
      if (beforeSeq !== undefined && d.seq >= beforeSeq) return false;
      return true;
    })
    .sort((a, b) => b.seq - a.seq)
    .slice(0, limit)
    .map((d) => d.call_id);
}

describe('list_logs filters', () => {
  const { log, rows } = buildLog(600);
  const times = rows.map((row) => row.at);

  it('stamps rows in order even when the clock steps back', () => {
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.at >= rows[i - 1]!.at).toBe(true);
    expect(log.verify()).toMatchObject({ ok: true, rows: rows.length });
  });

  it('finds exactly the calls a scan of every row finds, for every combination of filters', () => {
    const filter = fc.record(
      {
        agent: fc.constantFrom('agent-0', 'agent-3', 'nobody'),
        tool: fc.constantFrom('refund', 'get_payment_status'),
        decision: fc.constantFrom('allowed' as const, 'denied' as const),
        outcome: fc.constantFrom('ok' as const, 'error' as const, 'pending' as const, 'unknown' as const),
        paymentId: fc.constantFrom('tr_p8', 'tr_p17', 'tr_none'),
        invoiceId: fc.constantFrom('INV-4', 'INV-29'),
        // Times of rows (some shared by several rows), between rows, before the first and after the last.
        since: fc.constantFrom(...times.filter((_, i) => i % 50 === 0), ...times.filter((_, i) => i % 90 === 1).map((at) => `${at}Z`), '2000-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z'),
        until: fc.constantFrom(...times.filter((_, i) => i % 70 === 0), ...times.filter((_, i) => i % 110 === 3).map((at) => `${at}Z`), '2000-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z'),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(filter, fc.integer({ min: 1, max: 60 }), fc.option(fc.integer({ min: 1, max: rows.length + 1 }), { nil: undefined }), (given, limit, before) => {
        const page = listCalls(log.db, given, limit, before);
        expect(page.entries.map((entry) => entry.audit_id)).toEqual(reference(rows, given, limit, before));
      }),
      { numRuns: 400 },
    );
  });
});

describe('a filter no index answers', () => {
  it('looks through at most one window of rows per page, and the cursor goes on from there to what it looks for', () => {
    const log = new AuditLog(openDatabase(':memory:'));
    log.db.transaction(() => {
      log.append({ call_id: 'rare', kind: 'decision', agent: 'a', tool: 'cancel_invoice_payment', decision: 'allowed' });
      log.append({ call_id: 'rare', kind: 'outcome', agent: 'a', tool: 'cancel_invoice_payment', outcome: 'ok' });
      for (let i = 0; i < 12_000; i += 1) {
        log.append({ call_id: `c${i}`, kind: 'decision', agent: 'a', tool: 'get_payment_status', decision: 'allowed' });
        log.append({ call_id: `c${i}`, kind: 'outcome', agent: 'a', tool: 'get_payment_status', outcome: 'ok' });
      }
    })();
    let page = listCalls(log.db, { tool: 'cancel_invoice_payment' }, 50);
    let pages = 1;
    expect(page.entries).toEqual([]);
    expect(page.nextCursor).not.toBeNull();
    while (page.entries.length === 0 && page.nextCursor !== null) {
      page = listCalls(log.db, { tool: 'cancel_invoice_payment' }, 50, decodeCursor(page.nextCursor));
      pages += 1;
    }
    expect(page.entries.map((entry) => entry.audit_id)).toEqual(['rare']);
    expect(page.nextCursor).toBeNull();
    // 24,002 rows in windows of SCAN_ROWS.
    expect(pages).toBe(Math.ceil(24_002 / SCAN_ROWS));
    // A tool nobody calls: every page is empty and bounded, and the last says there is nothing more.
    let none = listCalls(log.db, { tool: 'no_such_tool' }, 50);
    for (let i = 0; none.nextCursor !== null && i < 20; i += 1) none = listCalls(log.db, { tool: 'no_such_tool' }, 50, decodeCursor(none.nextCursor));
    expect(none).toEqual({ entries: [], nextCursor: null });
  });
});
