import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/database.js';

// Worker threads load compiled JavaScript: this drives the built module, as `audit verify` does.
const { verifyLog } = (await import(new URL('../../dist/src/audit/verify-parallel.js', import.meta.url).href)) as typeof import('../../src/audit/verify-parallel.js');
const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;

const dir = mkdtempSync(join(tmpdir(), 'mim-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logFile(name: string, calls: number): string {
  const path = join(dir, `${name}.db`);
  const db = openDatabase(path);
  const log = new AuditLog(db);
  for (let i = 0; i < calls; i++) {
    log.append({ call_id: `c${i}`, kind: 'decision', agent: 'a', tool: 'get_payment_status', decision: 'allowed', payment_id: `tr_${i}` });
    log.append({ call_id: `c${i}`, kind: 'outcome', outcome: 'ok' });
  }
  db.close();
  return path;
}

/** What a person with sqlite3 and no respect for triggers can do to the file. */
function tamper(path: string, sql: string): void {
  const db = new Database(path);
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
  db.exec(sql);
  db.close();
}

function sequential(path: string) {
  const db = openDatabase(path);
  try {
    return new AuditLog(db).verify();
  } finally {
    db.close();
  }
}

async function parallel(path: string) {
  const db = openDatabase(path);
  try {
    return await verifyLog(db, path, { threads: 4 });
  } finally {
    db.close();
  }
}

describe('audit verify in ranges, one worker thread each', () => {
  it('gives the same answer as one pass on an intact log', async () => {
    const path = logFile('intact', 1500);
    const result = await parallel(path);
    expect(result).toEqual(sequential(path));
    expect(result).toMatchObject({ ok: true, rows: 3000 });
  });

  it.each([
    ['a changed row in the third range', 'UPDATE audit_log SET agent = \'mallory\' WHERE seq = 1700'],
    ['a changed row at the start of a range', 'UPDATE audit_log SET payment_id = \'tr_x\' WHERE seq = 751'],
    ['the last row of a range changed', 'UPDATE audit_log SET outcome = \'error\' WHERE seq = 750'],
    ['a deleted row at a range boundary', 'DELETE FROM audit_log WHERE seq = 1501'],
    ['two changes: the first one is reported', 'UPDATE audit_log SET agent = \'x\' WHERE seq IN (2900, 400)'],
    ['the last rows cut off and one before them changed', 'DELETE FROM audit_log WHERE seq > 2990; UPDATE audit_log SET agent = \'x\' WHERE seq = 2500'],
  ])('finds %s exactly where one pass does', async (_name, sql) => {
    const path = logFile(`bad-${Math.random().toString(36).slice(2)}`, 1500);
    tamper(path, sql);
    const expected = sequential(path);
    expect(expected.ok).toBe(false);
    expect(await parallel(path)).toEqual(expected);
  });

  it('is what `audit verify` runs, from the bundled CLI too', () => {
    const path = logFile('cli', 300);
    const verify = (...args: string[]) => execFileSync(process.execPath, [CLI, 'audit', 'verify', '--db', path, ...args], { encoding: 'utf8' });
    expect(verify()).toMatch(/Audit log intact: 600 rows/);
    expect(verify('--threads', '3')).toBe(verify());
    tamper(path, "UPDATE audit_log SET agent = 'mallory' WHERE seq = 450");
    let failed: { status: number; stdout: string } | undefined;
    try {
      verify('--threads', '3');
    } catch (error) {
      failed = error as { status: number; stdout: string };
    }
    expect(failed?.status).toBe(1);
    expect(failed?.stdout).toMatch(/Audit log BROKEN at row 450 \(call c224\): its contents do not match its hash.* 449 rows before it verified/);
  });

  it('refuses a thread count it cannot use', () => {
    const path = logFile('threads', 10);
    let failed: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [CLI, 'audit', 'verify', '--db', path, '--threads', '0'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      failed = error as { status: number; stderr: string };
    }
    expect(failed?.status).toBe(2);
    expect(failed?.stderr).toMatch(/--threads must be a whole number from 1 to 64; got "0"/);
  });
});
