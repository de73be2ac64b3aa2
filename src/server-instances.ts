/**
 * Which server processes are alive on this database. Several processes may share one file (a stdio server per client
 * window, an HTTP server); at start, a process must tell its dead predecessors' interrupted calls from calls another
 * live process is still making. Each process registers itself and beats every few seconds.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { writeIfFree, type SqliteDatabase } from './database.js';

const HEARTBEAT_MS = 5_000;
/** A process on another host that has not beaten for this long is taken for dead. */
const STALE_MS = 60_000;

export interface InstanceRow {
  instance_id: string;
  pid: number;
  host: string;
  started_at: string;
  heartbeat_at: string;
}

/** The instances this process registered (more than one where engines share a process, as in tests). */
const ours = new Set<string>();

export class ServerInstance {
  private readonly timer: NodeJS.Timeout;
  private readonly beat;
  private readonly remove;

  constructor(
    private readonly db: SqliteDatabase,
    readonly instanceId: string,
    private readonly clock: () => Date = () => new Date(),
  ) {
    const now = clock().toISOString();
    db.prepare('INSERT INTO server_instances (instance_id, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)').run(instanceId, process.pid, hostname(), now, now);
    ours.add(instanceId);
    this.beat = db.prepare('UPDATE server_instances SET heartbeat_at = ? WHERE instance_id = ?');
    this.remove = db.prepare('DELETE FROM server_instances WHERE instance_id = ?');
    this.timer = setInterval(() => {
      try {
        // Never waits for another process's write lock: a beat that cannot be written now is skipped, the next one
        // will do (a process on this host is judged by its pid, one elsewhere only after a minute without beats).
        writeIfFree(this.db, () => this.beat.run(this.clock().toISOString(), instanceId));
      } catch {
        // A closing database.
      }
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    ours.delete(this.instanceId);
    try {
      this.remove.run(this.instanceId);
    } catch {
      // Closing anyway; a leftover row is judged by its pid and heartbeat.
    }
  }
}

function pidAlive(pid: number, instanceId: string): boolean {
  // This process's pid on this host: alive if this process registered it; otherwise a predecessor that had the same
  // pid (a container's server is often pid 1 after every restart), and it is gone.
  if (pid === process.pid) return ours.has(instanceId);
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return stillAServer(pid);
}

/**
 * A process id can be given to a new process once the old one is gone. Where the process table can be read (Linux),
 * a process whose command line is not a serving mollie-invoice-mcp is not the one that registered.
 */
function stillAServer(pid: number): boolean {
  let commandLine: string;
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true;
  }
  return commandLine.split('\0').includes('serve');
}

/**
 * Whether the process that wrote `instanceId` may still be running a call; false when it is certainly gone. On this
 * host the process table answers: a process that is paused (a laptop asleep, a debugger, a busy database) but running
 * is alive however old its heartbeat. Only a process on another host is judged by its heartbeat.
 */
export function instanceAlive(db: SqliteDatabase, instanceId: string, now: Date): boolean {
  const row = db.prepare<[string], InstanceRow>('SELECT * FROM server_instances WHERE instance_id = ?').get(instanceId);
  if (!row) return false;
  if (row.host === hostname()) return pidAlive(row.pid, row.instance_id);
  return now.getTime() - Date.parse(row.heartbeat_at) <= STALE_MS;
}
