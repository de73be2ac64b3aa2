/**
 * The built command starts from V8's code cache (npm run build writes it), and still works when the cache does not
 * fit: a stale or damaged cache only costs start-up time.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, EXAMPLE_POLICIES } from '../support/stdio-server.js';

const exec = promisify(execFile);
const DIST_SRC = new URL('../../dist/src/', import.meta.url).pathname;
const BUNDLE = join(DIST_SRC, 'cli.bundle.cjs');

/** Compiles the bundle the way the launcher does for `serve`, in a fresh Node, and says whether V8 took the cache. */
async function compiledFromCache(bundle: string): Promise<boolean> {
  const probe = `
    const { compileBundle, setServeFlags } = await import(${JSON.stringify(join(DIST_SRC, 'code-cache.js'))});
    setServeFlags();
    process.stdout.write(String(compileBundle(${JSON.stringify(bundle)}).fromCache));`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', probe]);
  return stdout === 'true';
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('code cache', () => {
  it('is accepted by this Node for the bundle the build wrote', async () => {
    expect(await compiledFromCache(BUNDLE)).toBe(true);
  });

  it('is refused when it does not fit, and the command still runs from source', async () => {
    // Inside dist/, so the copy finds node_modules (better-sqlite3) and the package root as the original does.
    const dir = mkdtempSync(join(DIST_SRC, '..', 'cache-test-'));
    scratch.push(dir);
    cpSync(DIST_SRC, join(dir, 'src'), { recursive: true });
    writeFileSync(join(dir, 'src', 'cli.bundle.cjs.cache'), Buffer.alloc(4096, 7));
    expect(await compiledFromCache(join(dir, 'src', 'cli.bundle.cjs'))).toBe(false);
    const { stdout } = await exec(process.execPath, [join(dir, 'src', 'cli.js'), 'policy', 'check', '--policies', EXAMPLE_POLICIES], { env: { PATH: process.env.PATH ?? '' } });
    expect(stdout).toMatch(/^agent\s+create_invoice_payment/m);
  });

  it('is what the installed command runs', () => {
    expect(CLI).toBe(join(DIST_SRC, 'cli.js'));
  });
});
