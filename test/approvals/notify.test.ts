/** Telling approvers: the message, and that a failure is logged by host only and never reaches the call. */
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Approval } from '../../src/approvals/approvals.js';
import { ApprovalNotifier, type Post } from '../../src/approvals/notify.js';
import { readConfig } from '../../src/config.js';

const approval: Approval = {
  approvalId: 'ap_AAAAAAAAAAAAAAAAAAAAAAAA',
  agent: 'refund-desk',
  tool: 'refund',
  fingerprint: 'f',
  action: 'refund 80.00 EUR of payment tr_abc (invoice 2026-114)',
  amount: { value: '80.00', currency: 'EUR' },
  paymentId: 'tr_abc',
  invoiceId: '2026-114',
  askedCallId: 'c',
  askedAt: '2026-12-02T10:00:00.000Z',
  expiresAt: '2026-12-02T10:15:00.000Z',
  state: 'pending',
  decidedBy: null,
  decidedAt: null,
  usedCallId: null,
  usedAt: null,
  needed: 2,
  approvers: ['alice', 'bob'],
  rule: 'r',
  votes: [],
};

function capture(): { logger: pino.Logger; lines: () => string } {
  let text = '';
  const stream = new Writable({ write: (chunk: Buffer, _encoding, done) => { text += chunk.toString('utf8'); done(); } });
  return { logger: pino({ level: 'info' }, stream), lines: () => text };
}

const URL_WITH_SECRET = 'https://hooks.example.com/services/T000/B000/very-secret-part';

describe('telling approvers', () => {
  it('refuses a notification URL with a user name or password at start, without repeating it', () => {
    expect(() => readConfig({ MOLLIE_MCP_APPROVAL_NOTIFY_URL: 'https://bot:hunter2@chat.example.com/hooks/x' })).toThrow(
      'MOLLIE_MCP_APPROVAL_NOTIFY_URL must not contain a user name or password; use the webhook address the chat tool gives (its secret is in the path).',
    );
    expect(readConfig({ MOLLIE_MCP_APPROVAL_NOTIFY_URL: URL_WITH_SECRET }).approvalNotifyUrl).toBe(URL_WITH_SECRET);
  });

  it('posts one {text} message with the console link', async () => {
    const sent: { url: string; body: string }[] = [];
    const post: Post = async (url, init) => {
      sent.push({ url, body: init.body });
      return { ok: true, status: 200 };
    };
    const { logger } = capture();
    const notifier = new ApprovalNotifier(URL_WITH_SECRET, logger, () => 'https://mcp.example.com/console', () => 'approve', post);
    notifier.approvalAsked(approval);
    await notifier.settled();
    expect(sent).toHaveLength(1);
    expect(JSON.parse(sent[0]!.body)).toEqual({
      text: 'Agent "refund-desk" asks to refund 80.00 EUR of payment tr_abc (invoice 2026-114): 2 approvals needed from alice and bob, before 2026-12-02 10:15:00 UTC (approval ap_AAAAAAAAAAAAAAAAAAAAAAAA). Approve or reject: https://mcp.example.com/console/approvals#ap_AAAAAAAAAAAAAAAAAAAAAAAA',
    });
  });

  it('names the command when there is no console', () => {
    const notifier = new ApprovalNotifier(URL_WITH_SECRET, capture().logger, () => null, () => 'mollie-invoice-mcp approve ap_x --as NAME');
    expect(notifier.text(approval)).toContain('Approve with `mollie-invoice-mcp approve ap_x --as NAME`');
  });

  it('logs a failure by host only, and never throws', async () => {
    for (const post of [
      (async () => ({ ok: false, status: 500 })) as Post,
      (async () => {
        throw new TypeError(`fetch failed for ${URL_WITH_SECRET}`);
      }) as Post,
    ]) {
      const { logger, lines } = capture();
      const notifier = new ApprovalNotifier(URL_WITH_SECRET, logger, () => null, () => 'approve', post);
      expect(() => notifier.approvalAsked(approval)).not.toThrow();
      await notifier.settled();
      expect(lines()).toContain('"notify_host":"hooks.example.com"');
      expect(lines()).toContain('Telling approvers failed');
      expect(lines()).not.toContain('very-secret-part');
    }
  });
});
