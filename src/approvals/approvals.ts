/**
 * Out-of-band approvals: a money-moving call the policy wants a person to see, asked for by a client that cannot show
 * a prompt. The call fails with an approval id; a person runs `approve <id>` (or `reject <id>`); the agent repeats the
 * exact call with the id. An approval is bound to its agent and to the exact arguments and amount, is good for one
 * call, and expires. The table holds the current state; every step is also an audit event row (call_id = the
 * approval id), which is what an auditor trusts.
 */
import { createHash, randomBytes } from '../crypto-on-demand.js';
import type { AuditFields, AuditLog } from '../audit/audit-log.js';
import { canonicalJson } from '../audit/canonical-json.js';
import { immediate, type SqliteDatabase } from '../database.js';
import { formatMinorUnits } from '../mollie/money.js';

export type ApprovalState = 'pending' | 'approved' | 'rejected' | 'used' | 'expired';

export interface Approval {
  approvalId: string;
  agent: string;
  tool: string;
  fingerprint: string;
  /** "refund 600.00 EUR of payment tr_x", what will happen, in words. */
  action: string;
  amount: { value: string; currency: string } | null;
  paymentId: string | null;
  invoiceId: string | null;
  askedCallId: string;
  askedAt: string;
  expiresAt: string;
  state: ApprovalState;
  decidedBy: string | null;
  decidedAt: string | null;
  usedCallId: string | null;
  usedAt: string | null;
}

interface Row {
  approval_id: string;
  agent: string;
  tool: string;
  fingerprint: string;
  action: string;
  amount_value: string | null;
  amount_currency: string | null;
  payment_id: string | null;
  invoice_id: string | null;
  asked_call_id: string;
  asked_at: string;
  expires_at: string;
  state: ApprovalState;
  decided_by: string | null;
  decided_at: string | null;
  used_call_id: string | null;
  used_at: string | null;
}

function fromRow(row: Row): Approval {
  return {
    approvalId: row.approval_id,
    agent: row.agent,
    tool: row.tool,
    fingerprint: row.fingerprint,
    action: row.action,
    amount: row.amount_value !== null && row.amount_currency !== null ? { value: row.amount_value, currency: row.amount_currency } : null,
    paymentId: row.payment_id,
    invoiceId: row.invoice_id,
    askedCallId: row.asked_call_id,
    askedAt: row.asked_at,
    expiresAt: row.expires_at,
    state: row.state,
    decidedBy: row.decided_by,
    decidedAt: row.decided_at,
    usedCallId: row.used_call_id,
    usedAt: row.used_at,
  };
}

export const APPROVAL_ID = /^ap_[A-Za-z0-9]{24}$/;

function newApprovalId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  // 24 characters of 62: about 143 bits, drawn without modulo bias.
  let id = '';
  while (id.length < 24) {
    for (const byte of randomBytes(32)) {
      if (byte < 248 && id.length < 24) id += alphabet[byte % 62];
    }
  }
  return `ap_${id}`;
}

/** What an approval is bound to: the tool, every argument but the approval id itself, and the amount it resolved to. */
export function approvalFingerprint(tool: string, args: Record<string, unknown>, money: { minor: number; currency: string } | null): string {
  const { approval_id: _ignored, ...rest } = args;
  return createHash('sha256').update(canonicalJson({ tool, arguments: rest, money: money ? { minor: money.minor, currency: money.currency } : null })).digest('hex');
}

export interface AskInit {
  agent: string;
  tool: string;
  fingerprint: string;
  action: string;
  money: { minor: number; currency: string } | null;
  paymentId: string | null;
  invoiceId: string | null;
  callId: string;
  transport: string;
  ttlMs: number;
}

export type UseCheck =
  | { ok: true; approval: Approval }
  | { ok: false; reason: ApprovalDenial; message: string; pending: boolean };

export type ApprovalDenial = 'approval_unknown' | 'approval_wrong_agent' | 'approval_mismatch' | 'approval_pending' | 'approval_rejected' | 'approval_used' | 'approval_expired';

export type DecideResult = { ok: true; approval: Approval } | { ok: false; approval: Approval | null; message: string };

export function formatUtc(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

export class Approvals {
  private readonly byId;
  private readonly insertRow;
  private readonly setState;
  private readonly overdue;
  private readonly pendingRows;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly audit: AuditLog,
    private readonly clock: () => Date = () => new Date(),
    /** A command line of this CLI on this server's database, for messages: it must work as printed (command-line.ts). */
    private readonly command: (args: readonly string[]) => string = (args) => ['mollie-invoice-mcp', ...args].join(' '),
  ) {
    this.byId = db.prepare<[string], Row>('SELECT * FROM approvals WHERE approval_id = ?');
    this.insertRow = db.prepare(
      `INSERT INTO approvals (approval_id, agent, tool, fingerprint, action, amount_value, amount_currency, payment_id, invoice_id, asked_call_id, asked_at, expires_at, state)
       VALUES (@approval_id, @agent, @tool, @fingerprint, @action, @amount_value, @amount_currency, @payment_id, @invoice_id, @asked_call_id, @asked_at, @expires_at, 'pending')`,
    );
    this.setState = db.prepare(
      `UPDATE approvals SET state = @state, decided_by = COALESCE(@decided_by, decided_by), decided_at = COALESCE(@decided_at, decided_at),
              used_call_id = COALESCE(@used_call_id, used_call_id), used_at = COALESCE(@used_at, used_at)
       WHERE approval_id = @approval_id`,
    );
    this.overdue = db.prepare<[string], Row>("SELECT * FROM approvals WHERE state IN ('pending', 'approved') AND expires_at <= ? ORDER BY asked_at");
    this.pendingRows = db.prepare<[], Row>("SELECT * FROM approvals WHERE state = 'pending' ORDER BY asked_at");
  }

  get(approvalId: string): Approval | null {
    const row = this.byId.get(approvalId);
    return row ? fromRow(row) : null;
  }

  /** Records a pending approval and its "asked" event; joins the caller's transaction. */
  ask(init: AskInit): Approval {
    const now = this.clock();
    const approvalId = newApprovalId();
    const amount = init.money ? { value: formatMinorUnits(init.money.minor, init.money.currency), currency: init.money.currency } : null;
    const row: Row = {
      approval_id: approvalId,
      agent: init.agent,
      tool: init.tool,
      fingerprint: init.fingerprint,
      action: init.action,
      amount_value: amount?.value ?? null,
      amount_currency: amount?.currency ?? null,
      payment_id: init.paymentId,
      invoice_id: init.invoiceId,
      asked_call_id: init.callId,
      asked_at: now.toISOString(),
      expires_at: new Date(now.getTime() + init.ttlMs).toISOString(),
      state: 'pending',
      decided_by: null,
      decided_at: null,
      used_call_id: null,
      used_at: null,
    };
    immediate(this.db, () => {
      this.insertRow.run(row);
      this.event(fromRow(row), init.transport, 'approval_asked', `Agent "${init.agent}" asked a person to approve: ${init.action}. It expires at ${formatUtc(row.expires_at)}.`, { asked_by_call: init.callId });
    });
    return fromRow(row);
  }

  /**
   * Whether the call may go ahead on this approval: same agent, same arguments and amount, approved, unused, unexpired.
   * Runs inside the gate's transaction; an expiry it notices is recorded there.
   */
  /** What a person runs to approve this one, as printed in messages. */
  approveCommand(approvalId: string): string {
    return this.command(['approve', approvalId]);
  }

  check(approvalId: string, agent: string, fingerprint: string, transport: string): UseCheck {
    const approval = this.get(approvalId);
    const deny = (reason: ApprovalDenial, message: string, pending = false): UseCheck => ({ ok: false, reason, message, pending });
    if (!approval) return deny('approval_unknown', `There is no approval ${approvalId}. Call again without approval_id to ask for one.`);
    if (approval.agent !== agent) return deny('approval_wrong_agent', `Approval ${approvalId} was asked for by another agent; agent "${agent}" cannot use it.`);
    if (approval.fingerprint !== fingerprint) {
      return deny('approval_mismatch', `Approval ${approvalId} was given for exactly this: ${approval.action}. This call asks for something else; repeat the approved call with the same arguments, or call without approval_id to ask for a new approval.`);
    }
    if (this.expireIfOverdue(approval, transport)) {
      return deny('approval_expired', `Approval ${approvalId} expired at ${formatUtc(approval.expiresAt)}${approval.state === 'approved' ? ' before it was used' : ' before anyone approved it'}. Call again without approval_id to ask for a new one.`);
    }
    switch (approval.state) {
      case 'pending':
        return deny('approval_pending', `Approval ${approvalId} has not been given yet. Ask a person to run \`${this.approveCommand(approvalId)}\` (before ${formatUtc(approval.expiresAt)}), then repeat this call.`, true);
      case 'rejected':
        return deny('approval_rejected', `Approval ${approvalId} was rejected by ${approval.decidedBy ?? 'a person'} at ${formatUtc(approval.decidedAt ?? approval.askedAt)}. Do not repeat this call.`);
      case 'used':
        return deny('approval_used', `Approval ${approvalId} was already used by call ${approval.usedCallId ?? '?'}; an approval is good for one call. Call again without approval_id to ask for a new one.`);
      case 'expired':
        return deny('approval_expired', `Approval ${approvalId} expired at ${formatUtc(approval.expiresAt)}. Call again without approval_id to ask for a new one.`);
      case 'approved':
        return { ok: true, approval };
    }
  }

  /** Spends an approval on the call that used it; joins the caller's transaction. */
  markUsed(approval: Approval, callId: string, transport: string): void {
    const now = this.clock().toISOString();
    this.setState.run({ approval_id: approval.approvalId, state: 'used', decided_by: null, decided_at: null, used_call_id: callId, used_at: now });
    this.event(approval, transport, 'approval_used', `Call ${callId} used approval ${approval.approvalId} (approved by ${approval.decidedBy ?? '?'}): ${approval.action}.`, { used_by_call: callId });
  }

  /** A person's decision, from the command line. Only a pending, unexpired approval can be decided. */
  decide(approvalId: string, decision: 'approved' | 'rejected', by: string): DecideResult {
    return immediate(this.db, () => {
      const approval = this.get(approvalId);
      if (!approval) return { ok: false, approval: null, message: `There is no approval ${approvalId}; \`${this.command(['approvals'])}\` lists the pending ones.` };
      if (this.expireIfOverdue(approval, 'cli')) {
        return { ok: false, approval: { ...approval, state: 'expired' }, message: `Approval ${approvalId} expired at ${formatUtc(approval.expiresAt)}; nothing was ${decision}. The agent must ask again.` };
      }
      if (approval.state !== 'pending') {
        const decided = approval.decidedAt ? `${approval.state === 'used' ? 'approved' : approval.state} by ${approval.decidedBy ?? '?'} at ${formatUtc(approval.decidedAt)}` : approval.state;
        const used = approval.state === 'used' && approval.usedAt ? `, and used by call ${approval.usedCallId ?? '?'} at ${formatUtc(approval.usedAt)}` : '';
        return { ok: false, approval, message: `Approval ${approvalId} was already ${decided}${used}; nothing changed.` };
      }
      const now = this.clock().toISOString();
      this.setState.run({ approval_id: approvalId, state: decision, decided_by: by, decided_at: now, used_call_id: null, used_at: null });
      const decided: Approval = { ...approval, state: decision, decidedBy: by, decidedAt: now };
      this.event(
        decided,
        'cli',
        decision === 'approved' ? 'approval_approved' : 'approval_rejected',
        `${by} ${decision} approval ${approvalId} with \`mollie-invoice-mcp ${decision === 'approved' ? 'approve' : 'reject'}\`: ${approval.action}.`,
        { by },
      );
      return { ok: true, approval: decided };
    });
  }

  /** Pending approvals, after recording the expiry of every overdue one. */
  pending(): Approval[] {
    immediate(this.db, () => {
      for (const row of this.overdue.all(this.clock().toISOString())) this.expireIfOverdue(fromRow(row), 'cli');
    });
    return this.pendingRows.all().map(fromRow);
  }

  private expireIfOverdue(approval: Approval, transport: string): boolean {
    if (approval.state === 'expired') return true;
    if (approval.state !== 'pending' && approval.state !== 'approved') return false;
    if (this.clock().getTime() < Date.parse(approval.expiresAt)) return false;
    this.setState.run({ approval_id: approval.approvalId, state: 'expired', decided_by: null, decided_at: null, used_call_id: null, used_at: null });
    this.event(approval, transport, 'approval_expired', `Approval ${approval.approvalId} expired at ${formatUtc(approval.expiresAt)} ${approval.state === 'approved' ? 'unused' : 'without a decision'}: ${approval.action}.`, {});
    return true;
  }

  private event(approval: Approval, transport: string, reason: string, message: string, extra: Record<string, string>): void {
    const fields: Partial<AuditFields> & Pick<AuditFields, 'call_id' | 'kind'> = {
      call_id: approval.approvalId,
      kind: 'event',
      agent: approval.agent,
      transport,
      tool: approval.tool,
      invoice_id: approval.invoiceId,
      payment_id: approval.paymentId,
      amount_value: approval.amount?.value ?? null,
      amount_currency: approval.amount?.currency ?? null,
      reason,
      reason_message: message,
      action: approval.action,
      arguments: JSON.stringify({ approval_id: approval.approvalId, ...extra }),
    };
    this.audit.append(fields);
  }
}
