import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AUDIT_COLUMNS, AuditLog, canonicalRow, GENESIS_HASH } from '../../src/audit/audit-log.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { maskEmails, redactArguments } from '../../src/audit/redact.js';
import { openDatabase } from '../../src/database.js';

function freshLog(): AuditLog {
  return new AuditLog(openDatabase(':memory:'), () => new Date('2026-11-21T12:00:00.000Z'));
}

describe('the hash chain', () => {
  it('hashes each row over the previous hash and the canonical JSON of the row, from a zero genesis', () => {
    const log = freshLog();
    const first = log.append({ call_id: 'c1', kind: 'decision', agent: 'billing-bot', decision: 'allowed' });
    const second = log.append({ call_id: 'c1', kind: 'outcome', outcome: 'ok', duration_ms: 12 });
    expect(first.prev_hash).toBe(GENESIS_HASH);
    expect(second.prev_hash).toBe(first.hash);
    const { hash, prev_hash, ...content } = second;
    expect(hash).toBe(createHash('sha256').update(prev_hash + canonicalJson(content)).digest('hex'));
    expect(log.verify()).toEqual({ ok: true, rows: 2, lastHash: second.hash });
  });

  it('finds a deleted row and a changed row once the triggers are bypassed', () => {
    const log = freshLog();
    for (let i = 0; i < 5; i += 1) log.append({ call_id: `c${i}`, kind: 'decision', agent: 'a', decision: 'allowed' });
    const db = log.db as Database.Database;
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 3').run()).toThrow(/append-only/);
    db.exec('DROP TRIGGER audit_log_no_delete');
    db.prepare('DELETE FROM audit_log WHERE seq = 3').run();
    expect(log.verify()).toMatchObject({ ok: false, rows: 2, firstBad: { seq: 4, problem: 'row 3 is missing: the next row is 4' } });
  });
});

describe('verifying', () => {
  it('reads the canonical form SQLite writes for any text, and it is the one the row was hashed over', () => {
    const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\u001f', '\n', '\u007f', '\u2028', '/', 'é', '😀') }));
    fc.assert(
      fc.property(fc.array(fc.record({ agent: text, action: text, reason_message: fc.option(text, { nil: null }), duration_ms: fc.option(fc.integer(), { nil: null }) }), { minLength: 1, maxLength: 20 }), (rows) => {
        const log = freshLog();
        for (const [i, row] of rows.entries()) log.append({ call_id: `c${i}`, kind: 'event', ...row });
        const sql = (log.db as Database.Database).prepare(`SELECT json_object(${['action', 'agent', 'duration_ms', 'reason_message'].map((c) => `'${c}', ${c}`).join(', ')}) AS j, action, agent, duration_ms, reason_message FROM audit_log`);
        for (const { j, ...stored } of sql.all() as { j: string }[]) expect(j).toBe(canonicalJson(stored));
        expect(log.verify()).toMatchObject({ ok: true, rows: rows.length });
      }),
      { numRuns: 300 },
    );
  });

  it('keeps a row that is not well-formed text verifiable: what is hashed is what SQLite stores', () => {
    const log = freshLog();
    log.append({ call_id: 'c1', kind: 'event', reason_message: 'unknown argument "\ud800x": remove it', action: 'lone \udfff' });
    expect(log.verify()).toMatchObject({ ok: true, rows: 1 });
  });
});

describe('canonical JSON', () => {
  it('writes a row exactly as the general canonical form does, so old and new rows verify alike', () => {
    const value = fc.oneof(fc.constant(null), fc.string({ unit: 'binary' }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
    const columns = AUDIT_COLUMNS.filter((column) => column !== 'hash' && column !== 'prev_hash');
    fc.assert(
      fc.property(fc.record(Object.fromEntries(columns.map((column) => [column, value])) as Record<string, fc.Arbitrary<unknown>>), (row) => {
        expect(canonicalRow(row as never)).toBe(canonicalJson(row));
      }),
      { numRuns: 500 },
    );
  });

  it('sorts keys at every depth and leaves no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: null, c: 'x' }, e: [2, { g: true, f: false }] })).toBe('{"a":{"c":"x","d":null},"b":1,"e":[2,{"f":false,"g":true}]}');
  });
});

describe('what reaches the audit row of arguments', () => {
  it('masks e-mail addresses and drops secrets by key', () => {
    expect(maskEmails('send to jane.doe@example.com please')).toBe('send to j***@example.com please');
    const stored = JSON.parse(redactArguments({ description: 'for Jane <jane@example.org>', api_key: 'test_abcdefgh', nested: { Authorization: 'Bearer x' } })!) as Record<string, unknown>;
    expect(stored).toEqual({ description: 'for Jane <j***@example.org>', api_key: '[redacted]', nested: { Authorization: '[redacted]' } });
  });

  it('stores a __proto__ key as data, bounds long strings and deep nesting', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "text": "' + 'x'.repeat(5000) + '"}') as unknown;
    const stored = redactArguments(hostile)!;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(stored).toContain('"__proto__":{"polluted":true}');
    expect(stored.length).toBeLessThanOrEqual(4096);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 50; i += 1) deep = { deeper: deep };
    expect(redactArguments(deep)).toContain('[nested too deep]');
  });

  it('masks an address cut in half where a long text is truncated, and one right before the cut', () => {
    const cut = JSON.parse(redactArguments({ text: `${'a '.repeat(250)}jane.doe@exa${'m'.repeat(600)}` })!) as { text: string };
    expect(cut.text).not.toContain('jane.doe');
    expect(cut.text).toContain('j***@...');
    const whole = JSON.parse(redactArguments({ text: `${'b '.repeat(200)}mark@example.com ${'c'.repeat(600)}` })!) as { text: string };
    expect(whole.text).toContain('m***@example.com');
    expect(whole.text).not.toContain('mark@');
  });

  it('masks addresses inside runs of local-part characters once, not per character', () => {
    expect(maskEmails('x'.repeat(20) + 'jane@example.com')).toBe('x***@example.com');
    expect(maskEmails('a.b+c@example.com, d@example.org')).toBe('a***@example.com, d***@example.org');
  });
});
