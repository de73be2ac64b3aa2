/**
 * The people file while serving: an edit applies at once, a broken edit keeps the last good list (and says so in the
 * log and the audit log), and a removed file leaves nobody, never everybody.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/database.js';
import { PeopleError } from '../../src/people/load-people.js';
import { PeopleStore } from '../../src/people/people-store.js';
import { sha256Hex } from '../../src/policy/decide.js';

const directory = mkdtempSync(join(tmpdir(), 'mim-people-store-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const entry = (name: string, roles: string, token: string) => `  - name: ${name}\n    roles: [${roles}]\n    token_sha256: ${sha256Hex(token)}\n`;

describe('the people file while serving', () => {
  it('applies edits, keeps the last good list over a broken edit, and leaves nobody when the file is gone', () => {
    const path = join(directory, 'people.yaml');
    writeFileSync(path, `people:\n${entry('alice', 'approver', 'mip_a')}`);
    const db = openDatabase(join(directory, 'store.db'));
    const audit = new AuditLog(db);
    const store = new PeopleStore(path);
    store.recordTo(audit);
    expect(store.personForToken('mip_a')?.name).toBe('alice');
    expect(store.personForToken('mip_b')).toBeNull();

    writeFileSync(path, `people:\n${entry('alice', 'approver', 'mip_a')}${entry('bob', 'auditor', 'mip_b')}`);
    expect(store.personForToken('mip_b')?.roles).toEqual(['auditor']);

    writeFileSync(path, `people:\n${entry('alice', 'approver', 'mip_a')}  - name: bob\n    roles: [boss]\n    token_sha256: ${sha256Hex('mip_b')}\n    `);
    expect(store.personForToken('mip_b')?.name).toBe('bob');
    const failed = [...audit.rows()].filter((row) => row.reason === 'people_reload_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.reason_message).toContain('people.yaml:6: people.1.roles.0 must be one of "approver", "auditor"');

    unlinkSync(path);
    expect(store.personForToken('mip_a')).toBeNull();
    expect(store.current().people.size).toBe(0);
    expect([...audit.rows()].some((row) => row.reason === 'people_reload_failed' && /gone, so nobody may approve/.test(row.reason_message ?? ''))).toBe(true);

    writeFileSync(path, `people:\n${entry('carol', 'approver, auditor', 'mip_c')}`);
    expect(store.personForToken('mip_c')?.name).toBe('carol');
    expect([...audit.rows()].filter((row) => row.reason === 'people_reloaded').at(-1)!.reason_message).toBe('People file reloaded: carol (approver, auditor).');
    db.close();
  });

  it('refuses to start on a broken file, naming the file and line', () => {
    const path = join(directory, 'broken.yaml');
    writeFileSync(path, 'people:\n  - name: Alice\n    roles: []\n    token_sha256: nope\n');
    expect(() => new PeopleStore(path)).toThrow(PeopleError);
    try {
      new PeopleStore(path);
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toMatch(/broken\.yaml:2: people\.0\.name must be 1-64 lower-case letters/);
      expect(message).toMatch(/broken\.yaml:3: people\.0\.roles must name at least one role/);
      expect(message).toMatch(/broken\.yaml:4: people\.0\.token_sha256 must be 64 lower-case hex digits/);
    }
    expect(() => new PeopleStore(join(directory, 'missing.yaml'))).toThrow(/cannot read the people file \(ENOENT\)/);
  });
});
