/**
 * A throwaway PostgreSQL cluster from Debian's `postgresql` package, for the tests and the benchmark: initdb under a
 * temporary directory, pg_ctl on a free loopback port, password authentication over TCP (so a wrong password is a real
 * refusal), stopped and removed after. initdb refuses to run as root, so as root the cluster belongs to the
 * `postgres` user the package created (`runuser -u postgres`).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cluster {
  /** A superuser's connection string (the cluster's owner), for creating databases and roles. */
  adminUrl: string;
  port: number;
  password: string;
  stop(): void;
}

/** The newest PostgreSQL server binaries Debian installed, or null. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

/** Installs Debian's postgresql when it is missing and we may (as root); otherwise says what to install. */
export function ensurePostgres(): string {
  const found = postgresBin();
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error('The PostgreSQL tests need Debian\'s PostgreSQL server: run `sudo apt-get install -y postgresql` (or set MOLLIE_MCP_TEST_DATABASE_URL to a server you run).');
  console.log('Installing Debian postgresql for the shared-store tests (apt-get, about half a minute)...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'postgresql'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const bin = postgresBin();
  if (!bin) throw new Error('apt-get installed postgresql, but no initdb was found under /usr/lib/postgresql.');
  return bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** `durable`: fsync on, as a real server runs (the benchmark); the tests turn it off. */
export async function startCluster(options: { durable?: boolean } = {}): Promise<Cluster> {
  const bin = ensurePostgres();
  const root = process.getuid?.() === 0;
  const directory = mkdtempSync(join(tmpdir(), 'mim-postgres-'));
  const data = join(directory, 'data');
  const password = randomBytes(12).toString('hex');
  const passwordFile = join(directory, 'pw');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  let user = process.env.USER ?? 'postgres';
  if (root) {
    const ids = execFileSync('id', ['-u', 'postgres']).toString().trim();
    const group = execFileSync('id', ['-g', 'postgres']).toString().trim();
    chmodSync(directory, 0o700);
    chownSync(directory, Number(ids), Number(group));
    chownSync(passwordFile, Number(ids), Number(group));
    user = 'postgres';
  }
  const run = (command: string, args: string[]): void => {
    const full = join(bin, command);
    if (root) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: directory });
    else execFileSync(full, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: directory });
  };
  run('initdb', ['-D', data, '-U', user, '--pwfile', passwordFile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  rmSync(passwordFile);
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      // fsync off for the tests: a throwaway cluster, and they check behaviour, not durability.
      const fsync = options.durable === true ? '' : ' -c fsync=off';
      run('pg_ctl', ['-D', data, '-l', join(directory, 'log'), '-o', `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1${fsync} -c max_connections=300`, '-w', 'start']);
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
  const stop = (): void => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // Already stopped.
    }
    rmSync(directory, { recursive: true, force: true });
  };
  return { adminUrl: `postgres://${user}:${password}@127.0.0.1:${port}/postgres`, port, password, stop };
}
