/**
 * The policies in force, kept current while the server runs: an edit to policies/ applies without a restart, file by
 * file. A broken file keeps its last good policy, is logged and becomes an audit row, while every other file's edit or
 * removal applies at once; a removed agent file is noticed on the very next call (the directory's mtime is checked on
 * every read, the watcher covers edits in place).
 */
import { randomUUID } from '../crypto-on-demand.js';
import { statSync, watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import { loadPolicies, PolicyError, reloadPolicies } from './load-policies.js';
import type { PolicySet, ToolCapabilities } from './policy.js';

/** Editors save in bursts (write, rename, chmod): one reload after the burst is enough. */
const SETTLE_MS = 50;


export class PolicyStore {
  private policies: PolicySet;
  private dirty = false;
  private directoryMtime: number;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastProblem: string | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly directory: string,
    private readonly tools: readonly ToolCapabilities[],
    private readonly logger?: Logger,
  ) {
    // At start a broken policy stops the server: there is no last good one to keep.
    this.policies = loadPolicies(directory, tools);
    this.directoryMtime = this.readDirectoryMtime();
  }

  private audit: AuditLog | null = null;

  /** Where reloads are recorded; the database opens after the policies, so a broken policy at start creates no file. */
  recordTo(audit: AuditLog): void {
    this.audit = audit;
  }

  /** The policies in force now. */
  current(): PolicySet {
    const mtime = this.readDirectoryMtime();
    if (mtime !== this.directoryMtime) {
      this.directoryMtime = mtime;
      this.dirty = true;
    }
    if (this.dirty) this.reload();
    return this.policies;
  }

  /** Follows edits in place (which leave the directory's mtime alone) while the server runs. */
  watch(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(this.directory, { persistent: false }, () => {
        this.dirty = true;
        if (this.timer) clearTimeout(this.timer);
        // Reload soon even if no call comes, so a broken edit is reported when it is made.
        this.timer = setTimeout(() => this.current(), SETTLE_MS);
        this.timer.unref();
      });
      this.watcher.on('error', (error) => this.logger?.warn({ err: error }, 'Stopped watching the policies directory; edits now apply on the next call that notices the directory changed'));
    } catch (error) {
      this.logger?.warn({ err: error }, 'Cannot watch the policies directory; edits apply only when files are added or removed, or after a restart');
    }
  }

  /** Called after a reload that changed any agent's policy; returns the way to stop listening. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.listeners.clear();
    this.watcher?.close();
    this.watcher = null;
    if (this.timer) clearTimeout(this.timer);
  }

  private readDirectoryMtime(): number {
    try {
      return statSync(this.directory).mtimeMs;
    } catch {
      return -1;
    }
  }

  private reload(): void {
    this.dirty = false;
    let next: PolicySet;
    let problem: string | null = null;
    try {
      const reloaded = reloadPolicies(this.directory, this.tools, this.policies);
      next = reloaded.set;
      if (reloaded.problems.length > 0) problem = new PolicyError(reloaded.problems).message;
    } catch (error) {
      // The folder itself cannot be read: nothing is known, so nothing changes.
      problem = error instanceof PolicyError ? error.message : `cannot read the policies: ${(error as Error).message}`;
      next = this.policies;
    }
    const wasBroken = this.lastProblem !== null;
    if (problem !== null && problem !== this.lastProblem) {
      this.logger?.error({ problem }, 'A policy edit is broken: that file keeps its last good policy until it is fixed; other files apply');
      this.record('policy_reload_failed', `A policy edit is broken; the file keeps its last good policy, other files' edits and removals apply. ${problem}`, null);
    }
    this.lastProblem = problem;
    const before = this.policies;
    const fingerprint = (set: PolicySet): Map<string, string> => new Map([...set.agents.values()].map((agent) => [agent.agent, agent.sha256]));
    const [old, now] = [fingerprint(before), fingerprint(next)];
    const added = [...now.keys()].filter((agent) => !old.has(agent));
    const removed = [...old.keys()].filter((agent) => !now.has(agent));
    const changed = [...now.keys()].filter((agent) => old.has(agent) && old.get(agent) !== now.get(agent));
    this.policies = next;
    if (added.length + removed.length + changed.length === 0) {
      if (wasBroken && problem === null) {
        this.logger?.info('The broken policy edit is fixed; the policies in force did not change');
        this.record('policy_reloaded', 'Policies reloaded: the broken edit is fixed; nothing changed.', { added, removed, changed });
      }
      return;
    }
    const summary = [
      added.length > 0 ? `added ${added.join(', ')}` : null,
      removed.length > 0 ? `removed ${removed.join(', ')} (denied from now on)` : null,
      changed.length > 0 ? `changed ${changed.join(', ')}` : null,
    ].filter((part) => part !== null).join('; ');
    this.logger?.info({ added, removed, changed }, 'Policies reloaded');
    this.record('policy_reloaded', `Policies reloaded: ${summary}.`, { added, removed, changed });
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.logger?.warn({ err: error }, 'Telling a connection about the policy change failed');
      }
    }
  }

  private record(reason: string, message: string, details: Record<string, string[]> | null): void {
    try {
      this.audit?.append({
        call_id: randomUUID(),
        kind: 'event',
        agent: 'server',
        reason,
        reason_message: message.slice(0, 4000),
        action: 'reload the policies',
        arguments: details ? JSON.stringify(details) : null,
        rule: this.directory,
      });
    } catch (error) {
      this.logger?.error({ err: error }, 'Could not write the audit row of a policy reload');
    }
  }
}
