/**
 * Questions put to the person at a 2026-07-28 client. That protocol has no way for a server to ask while a call
 * waits: the call ends with an "input required" result holding the question, and the client repeats the call with
 * the person's answer and the token it was given (the request state, echoed unchanged). The repeat may reach any
 * replica, so each question is a row of the shared store. The token is 256 random bits, kept only as its hash; an
 * answer counts once, for the agent and tool that were asked about, and the gate checks it was for the same
 * arguments and amount. The call keeps its audit id across both requests, so its rows read as today's in-client
 * confirmation: asked, answered, decided, done.
 */
import type { AuditFields } from '../audit/audit-log.js';
import { createHash, randomBytes } from '../crypto-on-demand.js';
import type { SqliteDatabase } from '../database.js';
import type { ConfirmationAnswer } from '../gate.js';

/** A question still waiting, or the one a repeat just answered. */
export interface Question {
  callId: string;
  agent: string;
  tool: string;
  /** approvalFingerprint of the call asked about: tool, arguments and amount. */
  fingerprint: string;
  askedAt: string;
  expiresAt: string;
  /** The asking call's audit columns (who, what, which amount), for the rows that close it. */
  columns: Partial<AuditFields>;
}

export type Claim =
  | { ok: true; question: Question; answer: ConfirmationAnswer }
  /** unknown: no such question, or another agent's (not told apart); used: already answered, or closed unanswered. */
  | { ok: false; why: 'unknown' | 'used'; callId: string | null };

interface Row {
  token_sha256: string;
  call_id: string;
  agent: string;
  tool: string;
  fingerprint: string;
  asked_at: string;
  expires_at: string;
  audit_columns: string;
  answer: string | null;
}

const fromRow = (row: Row): Question => ({
  callId: row.call_id,
  agent: row.agent,
  tool: row.tool,
  fingerprint: row.fingerprint,
  askedAt: row.asked_at,
  expiresAt: row.expires_at,
  columns: JSON.parse(row.audit_columns) as Partial<AuditFields>,
});

const tokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** What a token looks like: 32 random bytes, base64url. Anything else is not looked up. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export class ClientConfirmations {
  private readonly insert;
  private readonly byHash;
  private readonly answer;
  private readonly overdueRows;
  private readonly pruneRows;

  constructor(db: SqliteDatabase) {
    this.insert = db.prepare(
      `INSERT INTO client_confirmations (token_sha256, call_id, agent, tool, fingerprint, asked_at, expires_at, audit_columns)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.byHash = db.prepare<[string], Row>('SELECT * FROM client_confirmations WHERE token_sha256 = ?');
    // The guard on answered_at makes an answer count once, whichever replica two repeats reach.
    this.answer = db.prepare('UPDATE client_confirmations SET answer = ?, answered_at = ? WHERE token_sha256 = ? AND answered_at IS NULL');
    this.overdueRows = db.prepare<[string], Row>('SELECT * FROM client_confirmations WHERE answered_at IS NULL AND expires_at <= ? ORDER BY expires_at LIMIT 100');
    this.pruneRows = db.prepare('DELETE FROM client_confirmations WHERE answered_at IS NOT NULL AND answered_at < ?');
  }

  /** Records a question; returns the token the client must send back. Runs inside the caller's transaction. */
  ask(question: Omit<Question, 'askedAt' | 'expiresAt'>, now: Date, ttlMs: number): { token: string; expiresAt: string } {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
    this.insert.run(tokenHash(token), question.callId, question.agent, question.tool, question.fingerprint, now.toISOString(), expiresAt, JSON.stringify(question.columns));
    return { token, expiresAt };
  }

  /**
   * Takes the answer a repeat carries, once: a question past its time is answered no_answer, whatever the repeat
   * says. Runs inside the caller's transaction (the write lock), so two repeats of one token cannot both pass.
   */
  claim(token: string, agent: string | null, tool: string, answer: Exclude<ConfirmationAnswer, 'no_answer'>, now: Date): Claim {
    const row = TOKEN.test(token) ? this.byHash.get(tokenHash(token)) : undefined;
    // Another agent's token is answered as an unknown one: it learns nothing about calls it did not make.
    if (!row || agent === null || row.agent !== agent || row.tool !== tool) return { ok: false, why: 'unknown', callId: null };
    if (row.answer !== null) return { ok: false, why: 'used', callId: row.call_id };
    const given: ConfirmationAnswer = Date.parse(row.expires_at) <= now.getTime() ? 'no_answer' : answer;
    if (this.answer.run(given, now.toISOString(), row.token_sha256).changes !== 1) return { ok: false, why: 'used', callId: row.call_id };
    return { ok: true, question: fromRow(row), answer: given };
  }

  /** Questions past their time that no repeat answered: each is closed as no_answer by closeOverdue's caller. */
  overdue(now: Date): { token: string; question: Question }[] {
    return this.overdueRows.all(now.toISOString()).map((row) => ({ token: row.token_sha256, question: fromRow(row) }));
  }

  /**
   * Forgets questions answered (or closed) more than a day ago: their story is in the audit log, and a token that old
   * is refused as unknown instead of used, which is as final.
   */
  prune(now: Date): void {
    this.pruneRows.run(new Date(now.getTime() - 24 * 60 * 60 * 1000).toISOString());
  }

  /** Marks an overdue question answered no_answer; false if a repeat (or another replica) got there first. */
  closeUnanswered(tokenSha256: string, now: Date): boolean {
    return this.answer.run('no_answer', now.toISOString(), tokenSha256).changes === 1;
  }
}
