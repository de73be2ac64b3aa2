/** The README's first command: `npm run demo` runs the built CLI, offline, and tells the story a person can follow. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;

describe('mollie-invoice-mcp demo (built CLI)', () => {
  it('is built', () => {
    expect(existsSync(CLI), 'run `npm run build` first (npm ci and npm test do)').toBe(true);
  });

  it('walks through create, the same request replayed, pay, refund and the refusals, offline', async () => {
    // No credential and no network in the environment: the demo must not need either.
    const { stdout, stderr } = await run(process.execPath, [CLI, 'demo'], { env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 });
    expect(stderr).toBe('');
    const [paymentId] = /tr_[A-Za-z0-9]+/.exec(stdout) ?? [];
    expect(paymentId).toBeDefined();
    expect(stdout).toContain(`payment ${paymentId} is open; pay link https://`);
    expect(stdout).toContain(`Mollie replays the first answer: ${paymentId} (the same payment, nothing charged twice)`);
    expect(stdout).toContain(`payment ${paymentId}: paid (final); amount 120.00 EUR`);
    expect(stdout).toMatch(/refund re_[A-Za-z0-9]+ is pending for 20\.00 EUR/);
    expect(stdout).toContain('refunded 20.00 EUR; refundable 100.00 EUR');
    expect(stdout).toMatch(/refused \(mollie_rejected, Mollie 422\): .*higher than the amount remaining/);
    expect(stdout).toMatch(/expired \(final\); amount 45\.50 EUR/);
    expect(stdout).toMatch(/only paid payments can be refunded/);
  });

  it('says what it can do when asked for a command it does not have', async () => {
    const failure = await run(process.execPath, [CLI, 'launch-rockets']).catch((error: { code: number; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toMatch(/unknown command.*launch-rockets[\s\S]*demo/);
  });
});
