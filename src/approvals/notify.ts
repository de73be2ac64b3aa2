/**
 * Telling approvers: when an approval is asked, one short JSON message `{ "text": ... }` (the shape Slack, Mattermost,
 * Rocket.Chat and Google Chat incoming webhooks take) is POSTed to MOLLIE_MCP_APPROVAL_NOTIFY_URL, with a link to the
 * console. It never blocks or fails the call: a failure is logged, by host only, since a chat webhook's URL is itself
 * a secret.
 */
import type { Logger } from 'pino';
import { formatUtc, namesInWords, type Approval } from './approvals.js';

const TIMEOUT_MS = 5_000;

export type Post = (url: string, init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<{ ok: boolean; status: number }>;

export class ApprovalNotifier {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
    /** The console's address, once known (MOLLIE_MCP_CONSOLE_URL, or the HTTP server's own /console). */
    private readonly consoleUrl: () => string | null,
    /** How to reach an approver on the command line, for a server with no console. */
    private readonly approveCommand: (approval: Approval) => string,
    private readonly post: Post = (url, init) => fetch(url, init),
  ) {}

  approvalAsked(approval: Approval): void {
    const sending = this.send(approval).finally(() => this.inFlight.delete(sending));
    this.inFlight.add(sending);
  }

  /** Waits (bounded) for messages still being sent, at shutdown. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  text(approval: Approval): string {
    const console = this.consoleUrl();
    const who = approval.needed > 1 ? `${approval.needed} approvals needed` : 'one approval needed';
    const whom = approval.approvers ? ` from ${namesInWords(approval.approvers)}` : '';
    const where = console !== null ? `Approve or reject: ${console}/approvals#${approval.approvalId}` : `Approve with \`${this.approveCommand(approval)}\``;
    return `Agent "${approval.agent}" asks to ${approval.action}: ${who}${whom}, before ${formatUtc(approval.expiresAt)} (approval ${approval.approvalId}). ${where}`;
  }

  private async send(approval: Approval): Promise<void> {
    const host = new URL(this.url).host;
    try {
      const answer = await this.post(this.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: this.text(approval) }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!answer.ok) this.logger.warn({ approval_id: approval.approvalId, notify_host: host, status: answer.status }, 'Telling approvers failed: the notification URL answered with an error; the approval waits all the same');
      else this.logger.info({ approval_id: approval.approvalId, notify_host: host }, 'Approvers told about an approval');
    } catch (error) {
      const reason = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError') ? `no answer in ${TIMEOUT_MS / 1000} s` : 'could not connect';
      // The error's own message can repeat the URL, so only its kind is logged.
      this.logger.warn({ approval_id: approval.approvalId, notify_host: host, reason }, 'Telling approvers failed; the approval waits all the same');
    }
  }
}
