/**
 * People who approve and audit, in the browser: the built HTTP server with a people file, headless Chromium for each
 * person, an agent over the SDK's Streamable HTTP client. A refund over the policy's threshold needs two named
 * approvers; the first is not enough; an auditor and an approver the policy does not name cannot approve (no button,
 * and a forged POST is refused); the second approver lets the agent's repeat through exactly once. Then the story,
 * the log and the charts, a POST without its CSRF token, and five wrong tokens slowing the sixth attempt down.
 * Screenshots of each page go to docs/images/ with UPDATE_DOCS=1.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_LAUNCH } from '../setup/chromium.js';
import { newToken, spawnHttpServer, type HttpClientHandle, type HttpServerHandle } from '../support/http-server.js';
import { produced, secret } from '../support/leak-watch.js';
import { CLI, createWorkspace, workspaceEnv, type Workspace } from '../support/stdio-server.js';
import { storeArgs, ON_POSTGRES, storeName } from '../support/store-under-test.js';

const exec = promisify(execFile);
const DESK = newToken();
const PEOPLE = { alice: newToken(), bob: newToken(), carol: newToken(), dave: newToken() };

const PEOPLE_FILE = `people:
  - name: alice
    roles: [approver]
    token_sha256: ${PEOPLE.alice.sha256}
  - name: bob
    roles: [approver, auditor]
    token_sha256: ${PEOPLE.bob.sha256}
  - name: carol
    roles: [auditor]
    token_sha256: ${PEOPLE.carol.sha256}
  - name: dave
    roles: [approver]
    token_sha256: ${PEOPLE.dave.sha256}
`;

const DESK_POLICY = `agent: desk
token_sha256: ${DESK.sha256}
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "1000.00" }
  get_payment_status: {}
  refund:
    limits:
      EUR: { per_call: "500.00", confirm_above: "50.00" }
    approvers: [alice, bob]
    approvals_needed: 2
`;

let workspace: Workspace;
let server: HttpServerHandle;
let agent: HttpClientHandle;
let browser: Browser;
let notifier: Server;
const notifications: { text: string }[] = [];
const shots = process.env.UPDATE_DOCS === '1' ? new URL('../../docs/images/', import.meta.url).pathname : null;

beforeAll(async () => {
  workspace = createWorkspace({ desk: DESK_POLICY });
  writeFileSync(join(workspace.dir, 'people.yaml'), PEOPLE_FILE);
  notifier = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      notifications.push(JSON.parse(body) as { text: string });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => notifier.listen(0, '127.0.0.1', resolve));
  server = await spawnHttpServer({
    workspace,
    env: {
      MOLLIE_MCP_PEOPLE: join(workspace.dir, 'people.yaml'),
      MOLLIE_MCP_APPROVAL_NOTIFY_URL: `http://127.0.0.1:${(notifier.address() as AddressInfo).port}/hooks/secret-path`,
    },
  });
  agent = await server.connect(DESK.token);
  browser = await chromium.launch(CHROMIUM_LAUNCH);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await agent?.close().catch(() => undefined);
  await server?.stop();
  notifier?.close();
  workspace?.remove();
});

async function shot(page: Page, name: string): Promise<void> {
  const image = await page.screenshot({ fullPage: true });
  expect(image.length).toBeGreaterThan(5_000);
  if (shots) {
    mkdirSync(shots, { recursive: true });
    writeFileSync(join(shots, `console-${name}.png`), image);
  }
}

/** A browser of the person's own, signed in with their personal token. */
async function signIn(person: keyof typeof PEOPLE, screenshot = false): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/console`);
  expect(new URL(page.url()).pathname).toBe('/console/sign-in');
  await page.fill('#token', PEOPLE[person].token);
  if (screenshot) await shot(page, 'sign-in');
  await page.click('button[type=submit]');
  await page.waitForURL(/\/console\/(approvals|log)$/);
  expect(await page.textContent('header .who')).toContain(`Signed in as ${person}`);
  for (const cookie of await context.cookies()) {
    secret(cookie.value);
    if (cookie.name === 'mim_console') expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
  }
  return { context, page };
}

async function csrfOf(page: Page): Promise<string> {
  return (await page.getAttribute('header form input[name=csrf]', 'value'))!;
}

const structured = (result: { structuredContent: Record<string, unknown> }) => result.structuredContent;

async function auditRows(): Promise<Record<string, unknown>[]> {
  const { stdout } = await exec(process.execPath, [CLI, 'audit', 'export', '--format', 'jsonl', ...storeArgs(workspace)], { env: workspaceEnv(workspace) });
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the console: named approvers, four eyes, the story, the charts', () => {
  let paymentId = '';
  let approvalId = '';
  const refund = { payment_id: '', amount: '80.00', description: 'goodwill' };

  it('a refund over the threshold waits for two named approvers, and the approvers are told', async () => {
    const link = structured(await agent.call('create_invoice_payment', { invoice_id: 'INV-4242', amount: '200.00' }));
    const customer = await browser.newPage();
    await customer.goto(String(link.checkout_url));
    await customer.click('button[value=paid]');
    await customer.close();
    const status = structured(await agent.call('get_payment_status', { payment_link_id: String(link.payment_link_id) }));
    expect(status.status).toBe('paid');
    paymentId = String(status.payment_id);
    refund.payment_id = paymentId;

    const asked = await agent.call('refund', refund);
    expect(asked.isError).toBe(true);
    const error = structured(asked).error as { code: string; message: string; approval_id: string };
    expect(error.code).toBe('approval_required');
    expect(error.message).toContain('2 different people must approve it first');
    expect(error.message).toMatch(/an approver \(alice or bob\) in the console/);
    approvalId = error.approval_id;

    await expect.poll(() => notifications.length, { timeout: 10_000 }).toBe(1);
    expect(notifications[0]!.text).toContain(`Agent "desk" asks to refund 80.00 EUR of payment ${paymentId} (invoice INV-4242)`);
    expect(notifications[0]!.text).toContain('2 approvals needed from alice and bob');
    expect(notifications[0]!.text).toContain(`${server.url}/console/approvals#${approvalId}`);
    // The chat webhook's URL is a secret of its own: the server log names its host only.
    expect(server.stderr()).not.toContain('secret-path');
  });

  it('the first approver approves in the browser, which is not enough on its own', async () => {
    const { context, page } = await signIn('alice', true);
    const card = page.locator(`section[data-approval="${approvalId}"]`);
    await expect.poll(() => card.count()).toBe(1);
    const facts = await card.textContent();
    expect(facts).toContain('80.00 EUR');
    expect(facts).toContain(paymentId);
    expect(facts).toContain('INV-4242');
    expect(facts).toContain('confirm_above = 50.00');
    expect(facts).toContain('2 from alice, bob');
    expect(await card.locator('.approved-by').textContent()).toBe('nobody yet');
    await shot(page, 'approvals');
    // A cookie of the same name that another page on this host set for a longer path does not sign alice out.
    await context.addCookies([{ name: 'mim_console', value: 'A'.repeat(43), domain: '127.0.0.1', path: '/console/approvals' }]);
    await page.goto(`${server.url}/console/approvals`);
    expect(new URL(page.url()).pathname).toBe('/console/approvals');
    await card.locator('textarea[name=note]').fill('Customer called, goodwill agreed');
    await card.locator('button.approve').click();
    await page.waitForURL(/\/console\/approvals$/);
    expect(await page.textContent('.flash.ok')).toContain('1 more approval(s) from other people are needed');
    expect(await page.locator(`section[data-approval="${approvalId}"] .approved-by`).textContent()).toBe('alice');
    // alice cannot be the second pair of eyes herself.
    expect(await page.locator(`section[data-approval="${approvalId}"] button.approve`).count()).toBe(0);

    const repeated = await agent.call('refund', { ...refund, approval_id: approvalId });
    expect(structured(repeated).error).toMatchObject({ code: 'approval_required', approval_id: approvalId });
    expect((structured(repeated).error as { message: string }).message).toContain('alice approved it; 1 more approval(s) are needed');

    // A form posted without its CSRF token does nothing.
    const forged = await context.request.post(`${server.url}/console/approvals/${approvalId}`, { form: { decision: 'approve' } });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('CSRF token is missing or wrong');
    await context.close();
  });

  it('an auditor-only person and an approver the policy does not name cannot approve: no button, and a forged POST is refused', async () => {
    for (const person of ['carol', 'dave'] as const) {
      const { context, page } = await signIn(person);
      if (person === 'carol') await page.goto(`${server.url}/console/approvals`);
      const card = page.locator(`section[data-approval="${approvalId}"]`);
      expect(await card.count()).toBe(1);
      expect(await card.locator('button').count()).toBe(0);
      expect(await card.textContent()).toContain(person === 'carol' ? 'carol is not an approver' : 'Only alice, bob may decide this');
      const forged = await context.request.post(`${server.url}/console/approvals/${approvalId}`, { form: { csrf: await csrfOf(page), decision: 'approve' } });
      expect(forged.status()).toBe(403);
      expect(await forged.text()).toContain(person === 'carol' ? 'carol is not an approver in the people file' : 'Only alice and bob may decide');
      await context.close();
    }
    const stillWaiting = await agent.call('refund', { ...refund, approval_id: approvalId });
    expect(structured(stillWaiting).error).toMatchObject({ code: 'approval_required' });
  });

  it('the second approver lets the agent\'s repeat through exactly once', async () => {
    const { context, page } = await signIn('bob');
    await page.goto(`${server.url}/console/approvals`);
    await page.locator(`section[data-approval="${approvalId}"] button.approve`).click();
    await page.waitForURL(/\/console\/approvals$/);
    expect(await page.textContent('.flash.ok')).toContain('It has all 2 approval(s)');
    await context.close();

    const done = await agent.call('refund', { ...refund, approval_id: approvalId });
    expect(done.isError).toBeFalsy();
    expect(structured(done)).toMatchObject({ payment_id: paymentId, amount: { value: '80.00', currency: 'EUR' } });
    const again = await agent.call('refund', { ...refund, approval_id: approvalId });
    // Refused as the identical refund it is (or, past the repeat window, as an approval already used).
    expect(again.isError).toBe(true);
    expect(['duplicate_call', 'approval_used']).toContain((structured(again).error as { reason: string }).reason);
    const status = structured(await agent.call('get_payment_status', { payment_id: paymentId }));
    expect(status.refunds).toHaveLength(1);
    expect(status.amount_remaining).toEqual({ value: '120.00', currency: 'EUR' });
  });

  it('an auditor reads the story of the payment, with both approvers, and the log', async () => {
    const { context, page } = await signIn('bob');
    await page.goto(`${server.url}/console/story?id=${paymentId}`);
    expect(await page.textContent('h1')).toContain(paymentId);
    expect(await page.textContent('.story-approvers')).toBe('alice, bob');
    // Text the bundle carries raw (a tagged template's) arrives as written, not re-decoded as latin1.
    expect(await page.textContent('ol.story li')).toContain(' \u00b7 desk \u00b7 ');
    expect(await page.textContent('body')).not.toContain('\u00c2');
    const story = await page.textContent('ol.story');
    expect(story).toContain('create_invoice_payment');
    expect(story).toContain('approval_required');
    expect(story).toMatch(/alice.*approved approval/);
    expect(await page.locator('ol.story li.call .approvers', { hasText: 'alice, bob' }).count()).toBeGreaterThan(0);
    await shot(page, 'story');

    await page.goto(`${server.url}/console/log?payment=${paymentId}`);
    const rows = await page.locator('table.log tbody tr').allTextContents();
    expect(rows.some((row) => row.includes('refund') && row.includes('allowed') && row.includes('80.00 EUR'))).toBe(true);
    expect(rows.every((row) => !row.includes('create_invoice_payment'))).toBe(true);
    await page.goto(`${server.url}/console/log`);
    await shot(page, 'log');
    await context.close();
  });

  it('the charts render, and the chain is verified from the console', async () => {
    const { context, page } = await signIn('carol');
    expect(new URL(page.url()).pathname).toBe('/console/log');
    await page.goto(`${server.url}/console/charts`);
    await page.waitForSelector('canvas[data-chart="money:0"][data-rendered]');
    await page.waitForSelector('canvas[data-chart="denials"][data-rendered]');
    expect(await page.getAttribute('canvas[data-chart="money:0"]', 'data-rendered')).toBe('2');
    // Something was drawn: the canvas is not blank.
    const inked = await page.$eval('canvas[data-chart="money:0"]', (canvas) => {
      const { data } = (canvas as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height);
      let count = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) count += 1;
      return count;
    });
    expect(inked).toBeGreaterThan(1000);
    await page.click('button:has-text("Verify the chain now")');
    await page.waitForURL(/\/console\/charts$/);
    expect(await page.textContent('.flash.ok')).toMatch(/The hash chain is intact, \d+ rows/);
    expect(await page.textContent('.last-verify')).toContain('by carol: intact');
    await page.waitForSelector('canvas[data-chart="denials"][data-rendered]');
    await shot(page, 'charts');

    // An auditor-only person reads, never decides: approving is refused even with the right CSRF token.
    await page.click('header form button');
    await page.waitForURL(/\/console\/sign-in$/);
    await context.close();
  });

  it('a vote that stopped counting (its person has a new token) does not hide the buttons from that person', async () => {
    const payment = structured(await agent.call('get_payment_status', { payment_id: paymentId }));
    expect(payment.amount_remaining).toEqual({ value: '120.00', currency: 'EUR' });
    const asked = structured(await agent.call('refund', { payment_id: paymentId, amount: '55.00' }));
    const pendingId = (asked.error as { approval_id: string }).approval_id;
    const before = await signIn('alice');
    await before.page.locator(`section[data-approval="${pendingId}"] button.approve`).click();
    await before.page.waitForURL(/\/console\/approvals$/);
    await before.context.close();
    const file = join(workspace.dir, 'people.yaml');
    const renewed = newToken();
    writeFileSync(file, PEOPLE_FILE.replace(PEOPLE.alice.sha256, renewed.sha256));
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/console/sign-in`);
      await page.fill('#token', renewed.token);
      await page.click('button[type=submit]');
      await page.waitForURL(/\/console\/approvals$/);
      const card = page.locator(`section[data-approval="${pendingId}"]`);
      expect(await card.locator('.approved-by').textContent()).toBe('nobody yet');
      expect(await card.locator('button.approve').count()).toBe(1);
      await context.close();
    } finally {
      writeFileSync(file, PEOPLE_FILE);
    }
  });

  it('two live sessions in one browser (one planted by another page on this host) are both ended', async () => {
    const alice = await signIn('alice');
    const carol = await signIn('carol');
    const carolSession = (await carol.context.cookies()).find((cookie) => cookie.name === 'mim_console')!.value;
    await alice.context.addCookies([{ name: 'mim_console', value: carolSession, domain: '127.0.0.1', path: '/console/approvals' }]);
    await alice.page.goto(`${server.url}/console/approvals`);
    expect(new URL(alice.page.url()).pathname).toBe('/console/sign-in');
    await carol.page.goto(`${server.url}/console/log`);
    expect(new URL(carol.page.url()).pathname).toBe('/console/sign-in');
    await alice.context.close();
    await carol.context.close();
  });

  it('sign-in forms whose bodies never finish hold nothing', async () => {
    const { connect } = await import('node:net');
    const port = Number(new URL(server.url).port);
    const hanging = Array.from({ length: 6 }, () => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf=`);
      });
      socket.on('error', () => undefined);
      return socket;
    });
    try {
      const { context } = await signIn('bob');
      await context.close();
    } finally {
      for (const socket of hanging) socket.destroy();
    }
  });

  it('a person given a new token in the people file is signed out at once; an edit that breaks the file changes nothing', async () => {
    const { context, page } = await signIn('carol');
    const file = join(workspace.dir, 'people.yaml');
    // The edit gives carol the agent's token hash by mistake: her session ends, and the agent's token signs no one in.
    writeFileSync(file, PEOPLE_FILE.replace(PEOPLE.carol.sha256, DESK.sha256));
    await page.goto(`${server.url}/console/log`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    await page.fill('#token', DESK.token);
    const [refused] = await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST'), page.click('button[type=submit]')]);
    expect(refused.status()).toBe(401);
    // A broken edit keeps the last good file: bob, whose entry did not change, stays signed in.
    const bob = await signIn('bob');
    writeFileSync(file, `${PEOPLE_FILE}  - name: Eve\n`);
    await bob.page.goto(`${server.url}/console/log`);
    expect(new URL(bob.page.url()).pathname).toBe('/console/log');
    writeFileSync(file, PEOPLE_FILE);
    await bob.context.close();
    await context.close();
  });

  it('a flood of sign-in forms without their CSRF token writes a bounded number of rows', async () => {
    const before = (await auditRows()).filter((row) => row.reason === 'console_csrf_refused').length;
    const answers = await Promise.all(
      Array.from({ length: 60 }, () =>
        fetch(`${server.url}/console/sign-in`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'csrf=x&token=y' }),
      ),
    );
    expect(answers.every((answer) => answer.status === 403)).toBe(true);
    // At most the address's budget of refusals gets rows of its own; the rest are counted in one summary event.
    const after = (await auditRows()).filter((row) => row.reason === 'console_csrf_refused').length;
    expect(after - before).toBeLessThanOrEqual(21);
  });

  it('five wrong tokens slow the sixth attempt down, whatever token it brings', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      await page.goto(`${server.url}/console/sign-in`);
      await page.fill('#token', `mip_wrong${attempt}`);
      const [answer] = await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST'), page.click('button[type=submit]')]);
      expect(answer.status()).toBe(401);
    }
    await page.goto(`${server.url}/console/sign-in`);
    await page.fill('#token', PEOPLE.alice.token);
    const [slowed] = await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST'), page.click('button[type=submit]')]);
    expect(slowed.status()).toBe(429);
    expect(Number(slowed.headers()['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await page.textContent('.flash.error')).toContain('Too many wrong tokens from this address');
    await context.close();
  });

  it('the audit log holds every step under the people\'s names, and none of their tokens', async () => {
    const rows = await auditRows();
    const events = rows.filter((row) => row.kind === 'event' && row.call_id === approvalId);
    const byReason = (reason: string) => events.filter((row) => row.reason === reason);
    expect(byReason('approval_given')).toHaveLength(1);
    expect(JSON.parse(String(byReason('approval_given')[0]!.arguments))).toMatchObject({ by: 'alice', via: 'console', authenticated: true, approvers: ['alice'], note: 'Customer called, goodwill agreed' });
    expect(JSON.parse(String(byReason('approval_approved')[0]!.arguments))).toMatchObject({ by: 'bob', approvers: ['alice', 'bob'] });
    expect(byReason('approval_used')[0]!.reason_message).toContain('approved by alice and bob');
    const console = rows.filter((row) => row.transport === 'console' && row.call_id !== approvalId);
    const reasons = console.map((row) => `${String(row.agent)} ${String(row.reason)}`);
    for (const expected of ['person:alice console_signed_in', 'person:alice console_csrf_refused', 'person:carol console_decision_refused', 'person:dave console_decision_refused', 'person:bob console_signed_in', 'person:carol chain_verified', 'person:carol console_signed_out', 'null console_sign_in_failed']) {
      expect(reasons).toContain(expected);
    }
    const decision = rows.find((row) => row.kind === 'decision' && row.tool === 'refund' && row.reason === 'approved')!;
    expect(decision.reason_message).toContain(`Approved by alice and bob (approval ${approvalId})`);
    const text = JSON.stringify(rows);
    for (const token of Object.values(PEOPLE)) expect(text).not.toContain(token.token);
    produced('console audit rows', text);
  });

});

describe('the console without a people file', () => {
  it('says what it needs instead of a sign-in form', async () => {
    const bare = createWorkspace({ desk: DESK_POLICY.replace(/    approvers: \[alice, bob\]\n    approvals_needed: 2\n/, '') });
    const plain = await spawnHttpServer({ workspace: bare });
    try {
      expect(plain.stderr()).toContain('"console":"off (MOLLIE_MCP_PEOPLE not set)"');
      const page = await browser.newPage();
      const answer = await page.goto(`${plain.url}/console`);
      expect(answer?.status()).toBe(404);
      expect(await page.textContent('h1')).toBe('The console needs a people file');
      expect(await page.locator('input[type=password]').count()).toBe(0);
      await page.close();
    } finally {
      await plain.stop();
      bare.remove();
    }
  });
});

describe('approving on the command line under a people file', () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { ...workspaceEnv(workspace), MOLLIE_MCP_PEOPLE: join(workspace.dir, 'people.yaml'), ...env } });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  it('refuses an OS user name and a wrong token, and records the failed attempt; the right token counts', async () => {
    const payment = structured(await agent.call('get_payment_status', { invoice_id: 'INV-4242' }));
    const asked = structured(await agent.call('refund', { payment_id: String(payment.payment_id), amount: '60.00' }));
    const approvalId = (asked.error as { approval_id: string }).approval_id;

    const anonymous = await run(['approve', approvalId]);
    expect(anonymous.code).toBe(2);
    expect(anonymous.stderr).toContain(`approve ${approvalId} --as NAME`);
    // Even without MOLLIE_MCP_PEOPLE in this shell: the server recorded that its approvers are named.
    const unset = await run(['approve', approvalId], { MOLLIE_MCP_PEOPLE: '' });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('An OS user name no longer counts');

    // A people file of the caller's own making, naming "alice" with a token it knows, is not the server's.
    const forged = newToken();
    const forgedFile = join(workspace.dir, 'forged-people.yaml');
    writeFileSync(forgedFile, `people:\n  - name: alice\n    roles: [approver]\n    token_sha256: ${forged.sha256}\n`);
    const own = await run(['approve', approvalId, '--as', 'alice'], { MOLLIE_MCP_PEOPLE: forgedFile, MOLLIE_MCP_PERSON_TOKEN: forged.token });
    expect(own.code).toBe(2);
    expect(own.stderr).toContain(`names its approvers in ${join(workspace.dir, 'people.yaml')}, not ${forgedFile}`);
    const wrong = await run(['approve', approvalId, '--as', 'alice'], { MOLLIE_MCP_PERSON_TOKEN: secret(newToken().token) });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("That is not alice's personal token");
    const stolen = await run(['approve', approvalId, '--as', 'alice'], { MOLLIE_MCP_PERSON_TOKEN: PEOPLE.bob.token });
    expect(stolen.code).toBe(1);
    const auditor = await run(['approve', approvalId, '--as', 'carol'], { MOLLIE_MCP_PERSON_TOKEN: PEOPLE.carol.token });
    expect(auditor.code).toBe(1);
    expect(auditor.stderr).toContain('carol is not an approver');

    const right = await run(['approve', approvalId, '--as', 'alice', '--note', 'ok by phone'], { MOLLIE_MCP_PERSON_TOKEN: PEOPLE.alice.token });
    expect(right.code).toBe(0);
    expect(right.stdout).toContain(`Approved by alice: approval ${approvalId}`);
    expect(right.stdout).toContain('1 more approval(s) from other people are needed');

    const rows = await auditRows();
    const failed = rows.filter((row) => row.call_id === approvalId && row.reason === 'approval_sign_in_failed');
    expect(failed).toHaveLength(2);
    expect(failed[0]!.reason_message).toContain('as "alice" with a token that is not theirs');
    const given = rows.find((row) => row.call_id === approvalId && row.reason === 'approval_given')!;
    expect(JSON.parse(String(given.arguments))).toMatchObject({ by: 'alice', via: 'cli', authenticated: true, note: 'ok by phone' });
  });

  it('a server without the people file is refused on a database whose approvers are named', async () => {
    // Policies that name no approvers, so only the database's mark can refuse it.
    const plain = join(workspace.dir, 'plain-policies');
    mkdirSync(plain, { recursive: true });
    writeFileSync(join(plain, 'desk.yaml'), 'agent: desk\ntools:\n  refund:\n    limits:\n      EUR: { per_call: "500.00", confirm_above: "50.00" }\n');
    const started = await run(['serve', '--simulator'], { MOLLIE_MCP_PEOPLE: '', MOLLIE_MCP_AGENT: 'desk', MOLLIE_MCP_POLICIES: plain });
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`Approvals on ${storeName(workspace)} are made by named people (people file ${join(workspace.dir, 'people.yaml')}), and this server has no people file`);
  });

  // About a SQLite file that must not be created; on PostgreSQL the workspace names its database instead.
  it.skipIf(ON_POSTGRES)('a mistake in the people file stops serve with file:line, before any database exists', async () => {
    const bad = join(workspace.dir, 'bad-people.yaml');
    writeFileSync(bad, `people:\n  - name: erin\n    roles: [approver, boss]\n    token_sha256: ${PEOPLE.alice.sha256}\n`);
    const db = join(workspace.dir, 'never.db');
    const started = await run(['serve', '--simulator', '--transport', 'http', '--port', '0'], { MOLLIE_MCP_PEOPLE: bad, MOLLIE_MCP_DB: db });
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/bad-people\.yaml:3: people\.0\.roles\.1 must be one of "approver", "auditor"/);
    expect(existsSync(db)).toBe(false);
  });
});
