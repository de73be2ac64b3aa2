/**
 * The people in force, kept current while the server runs: an edit to the people file applies on the next sign-in or
 * decision without a restart. A broken edit keeps the last good list (logged, and an audit row); a removed file
 * leaves nobody who may approve or audit, never everybody.
 */
import { randomUUID } from '../crypto-on-demand.js';
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import { tokenMatches } from '../policy/decide.js';
import { loadPeople, PeopleError, type PeopleSet, type Person } from './load-people.js';

export class PeopleStore {
  private people: PeopleSet;
  private stamp: string;
  private lastProblem: string | null = null;
  private audit: AuditLog | null = null;

  constructor(
    readonly path: string,
    private readonly logger?: Logger,
  ) {
    // At start a broken file stops the server: there is no last good list to keep.
    this.people = loadPeople(path);
    this.stamp = this.readStamp();
  }

  recordTo(audit: AuditLog): void {
    this.audit = audit;
  }

  current(): PeopleSet {
    const stamp = this.readStamp();
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      this.reload();
    }
    return this.people;
  }

  /** The person whose personal token this is, compared by hash in constant time; null for no one. */
  personForToken(token: string): Person | null {
    let found: Person | null = null;
    // Every entry is compared, so the time taken does not say how far down the list a token's person is.
    for (const person of this.current().people.values()) if (tokenMatches(token, person.tokenSha256)) found = person;
    return found;
  }

  private readStamp(): string {
    try {
      const info = statSync(this.path);
      return `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  private reload(): void {
    let problem: string | null = null;
    let next = this.people;
    if (this.stamp === 'missing') {
      problem = `${this.path}: the people file is gone, so nobody may approve or audit until it is back.`;
      next = { file: this.people.file, people: new Map(), sha256: '' };
    } else {
      try {
        next = loadPeople(this.path);
      } catch (error) {
        problem = error instanceof PeopleError ? error.message : `cannot read the people file: ${(error as Error).message}`;
      }
    }
    const changed = next !== this.people;
    this.people = next;
    if (problem !== null && problem !== this.lastProblem) {
      this.logger?.error({ problem }, 'The people file is broken or gone: the last good list stays in force, or nobody if it is gone');
      this.record('people_reload_failed', problem);
    }
    this.lastProblem = problem;
    if (changed && problem === null) {
      this.logger?.info({ people: this.people.people.size }, 'People file reloaded');
      this.record('people_reloaded', `People file reloaded: ${[...this.people.people.values()].map((person) => `${person.name} (${person.roles.join(', ')})`).join('; ') || 'nobody'}.`);
    }
  }

  private record(reason: string, message: string): void {
    try {
      this.audit?.append({
        call_id: randomUUID(),
        kind: 'event',
        agent: 'server',
        reason,
        reason_message: message.slice(0, 4000),
        action: 'reload the people file',
        rule: this.path,
        policy_sha256: this.people.sha256 || null,
      });
    } catch (error) {
      this.logger?.error({ err: error }, 'Could not write the audit row of a people file reload');
    }
  }
}
