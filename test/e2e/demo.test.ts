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

  it('walks agents through the gate: pay link, paid days later, status, a link replaced for the rest, a withdrawn link, refund, denials, the verified log', async () => {
    // No credential and no network in the environment: the demo must not need either.
    const { stdout, stderr } = await run(process.execPath, [CLI, 'demo'], { env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 });
    expect(stderr).toBe('');
    const [linkId] = /pl_[A-Za-z0-9]+/.exec(stdout) ?? [];
    const [paymentId] = /tr_[A-Za-z0-9]+/.exec(stdout) ?? [];
    expect(linkId).toBeDefined();
    expect(stdout).toContain('billing-bot sees: create_invoice_payment, get_payment_status, list_logs, cancel_invoice_payment');
    expect(stdout).toContain('mallory (no policy) sees: none');
    expect(stdout).toMatch(new RegExp(`payment link ${linkId} is open, payable until \\d{4}-\\d{2}-\\d{2} \\(30 days\\); pay link https://`));
    expect(stdout).toContain(`${linkId}, reused: true (no second link)`);
    expect(stdout).toContain(`72 hours after it was made (a Payments API checkout would have expired after about 15 minutes): payment ${paymentId} is paid`);
    expect(stdout).toMatch(/paid: Paid on \d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC through its pay link; payment tr_\w+, refundable 450\.00 EUR/);
    const [, oldLink] = /payment link (pl_\w+) asks for 300\.00 EUR/.exec(stdout) ?? [];
    expect(stdout).toMatch(new RegExp(`payment link pl_\\w+ asks only for the rest: 200\\.00 EUR; replaced \\(archived first, so the old amount can no longer be paid\\): ${oldLink}`));
    expect(stdout).toMatch(/payment link pl_\w+ is now canceled: a customer opening it can no longer pay/);
    expect(stdout).toMatch(/refund re_\w+ is pending for 20\.00 EUR/);
    expect(stdout).toMatch(/denied before reaching Mollie: policy_denied \(per_call_exceeded\): 150\.00 EUR is over agent "refund-desk"'s per-call limit of 100\.00 EUR/);
    expect(stdout).toMatch(/denied: policy_denied \(unknown_agent\): Agent "mallory" has no policy/);
    expect(stdout).toMatch(/denied: policy_denied \(tool_not_allowed\)/);
    expect(stdout).toMatch(/time \(UTC\)\s+agent\s+tool\s+decision\s+outcome\s+amount\s+policy/);
    // Refused calls show what they asked for too, from the source row.
    expect(stdout).toMatch(/mallory\s+create_invoice_payment\s+denied\s+error\s+5000\.00 EUR/);
    expect(stdout).toMatch(/billing-bot\s+refund\s+denied\s+error\s+5\.00\s+[0-9a-f]{12}/);
    expect(stdout).toMatch(/nothing moves yet: approval_required \(approval_required\): 80\.00 EUR is over 50\.00 EUR[^\n]*Nothing was sent to Mollie\. A person must approve it first: ask them to run `[^`]*\bapprove ap_\w{24} --db [^`]+demo\.db`/);
    expect(stdout).toMatch(/finance-lead runs `mollie-invoice-mcp approve ap_\w{24}`: approved/);
    expect(stdout).toMatch(/repeated with approval_id: refund re_\w+ is pending for 80\.00 EUR/);
    expect(stdout).toMatch(/repeated once more, as an agent retrying might: conflict \(duplicate_call\): Mollie already has a refund of 80\.00 EUR on payment tr_\w+, made at \d\d:\d\d UTC \(refund re_\w+, pending\)/);
    expect(stdout).toMatch(/intact: 33 rows \(two per call, and one for each step of the approval\)/);
  });

  it('says what it can do when asked for a command it does not have', async () => {
    const failure = await run(process.execPath, [CLI, 'launch-rockets']).catch((error: { code: number; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toMatch(/unknown command.*launch-rockets[\s\S]*demo/);
  });
});
