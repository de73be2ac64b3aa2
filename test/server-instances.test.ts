/** Which server processes are alive on a database: what start-up reconciliation and invoice locks rely on. */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { instanceAlive, ServerInstance } from '../src/server-instances.js';

describe('instanceAlive', () => {
  it('takes an instance of this host with this process\'s pid for a predecessor that is gone (a container restarted as pid 1)', () => {
    const db = openDatabase(':memory:');
    const now = new Date();
    const insert = db.prepare('INSERT INTO server_instances (instance_id, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)');
    insert.run('before-restart', process.pid, hostname(), now.toISOString(), now.toISOString());
    insert.run('elsewhere-fresh', 4242, 'another-host', now.toISOString(), now.toISOString());
    insert.run('elsewhere-silent', 4242, 'another-host', now.toISOString(), new Date(now.getTime() - 61_000).toISOString());
    expect(instanceAlive(db, 'before-restart', now)).toBe(false);
    expect(instanceAlive(db, 'elsewhere-fresh', now)).toBe(true);
    expect(instanceAlive(db, 'elsewhere-silent', now)).toBe(false);
    expect(instanceAlive(db, 'never-registered', now)).toBe(false);
    // One this process registered itself is alive (two engines in one process, as tests run them).
    const mine = new ServerInstance(db, 'registered-here');
    expect(instanceAlive(db, 'registered-here', now)).toBe(true);
    mine.close();
    db.close();
  });
});
