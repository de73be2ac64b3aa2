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
import { hasRole, type PeopleSet, type PersonRole } from '../people/load-people.js';

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
  /** How many different people must approve (the policy's approvals_needed when it was asked). */
  needed: number;
  /** Who may approve (the policy's approvers when it was asked); null: every approver. */
  approvers: readonly string[] | null;
  /** The policy rule that asked for a person. */
  rule: string | null;
  /** Each person's decision so far, in order. */
  votes: readonly Vote[];
}

/** One person's yes or no on one approval. */
export interface Vote {
  person: string;
  decision: 'approved' | 'rejected';
  /** console | cli */
  via: string;
  /** The person's token was checked against the people file; false for an OS user name without a people file. */
  authenticated: boolean;
  /** The token_sha256 the person signed in with, so a vote made under another people file does not count. */
  tokenSha256: string | null;
  note: string | null;
  at: string;
  /** Whether it counts under the people file in force where it was read (Approvals.voteCounts); what is shown. */
  counts?: boolean;
}

/** Who is deciding, as the console or the command line established it. */
export interface Decider {
  name: string;
  via: 'console' | 'cli';
  authenticated: boolean;
  tokenSha256: string | null;
  /** The person's roles in the people file; null when there is no people file (today's OS user name). */
  roles: readonly PersonRole[] | null;
  note?: string | null;
}

interface VoteRow {
  person: string;
  decision: 'approved' | 'rejected';
  via: string;
  authenticated: number;
  token_sha256: string | null;
  note: string | null;
  at: string;
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
  approvals_needed: number;
  approvers: string | null;
  rule: string | null;
}

function fromRow(row: Row, votes: readonly Vote[] = []): Approval {
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
    needed: row.approvals_needed ?? 1,
    approvers: row.approvers === null ? null : (JSON.parse(row.approvers) as string[]),
    rule: row.rule,
    votes,
  };
}

/** The names of the people who said yes, in order. */
export function approverNames(approval: Pick<Approval, 'votes'>): string[] {
  return approval.votes.filter((vote) => vote.decision === 'approved' && vote.counts !== false).map((vote) => vote.person);
}

/** "alice and bob", "alice, bob and carol". */
export function namesInWords(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? 'nobody') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
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
  /** The policy's approvals_needed and approvers, and the rule that asked. */
  needed?: number;
  approvers?: readonly string[] | null;
  rule?: string | null;
}

/** What the policy in force now asks of an approval being used: it may have been tightened since it was asked. */
export interface ApprovalDemand {
  needed: number;
  approvers: readonly string[] | null;
}

export type UseCheck =
  | { ok: true; approval: Approval }
  | { ok: false; reason: ApprovalDenial; message: string; pending: boolean };

export type ApprovalDenial = 'approval_unknown' | 'approval_wrong_agent' | 'approval_mismatch' | 'approval_pending' | 'approval_rejected' | 'approval_used' | 'approval_expired';

/** `forbidden`: this person may not decide it (a 403 in the console); otherwise the approval's state stood in the way. */
export type DecideResult = { ok: true; approval: Approval } | { ok: false; approval: Approval | null; message: string; forbidden?: boolean };

export function formatUtc(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

export class Approvals {
  private readonly byId;
  private readonly insertRow;
  private readonly setState;
  private readonly overdue;
  private readonly pendingRows;
  private readonly recentRows;
  private readonly voteRows;
  private readonly insertVote;
  private readonly voteEvents;
  private readonly deleteVote;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly audit: AuditLog,
    private readonly clock: () => Date = () => new Date(),
    /** A command line of this CLI on this server's database, for messages: it must work as printed (command-line.ts). */
    private readonly command: (args: readonly string[]) => string = (args) => ['mollie-invoice-mcp', ...args].join(' '),
    /** The people file in force for the server using these approvals; null: none, and OS user names count. */
    private readonly people: () => PeopleSet | null = () => null,
    /** The console's address, once known, for messages that send people there. */
    private readonly consoleUrl: () => string | null = () => null,
  ) {
    this.byId = db.prepare<[string], Row>('SELECT * FROM approvals WHERE approval_id = ?');
    this.insertRow = db.prepare(
      `INSERT INTO approvals (approval_id, agent, tool, fingerprint, action, amount_value, amount_currency, payment_id, invoice_id, asked_call_id, asked_at, expires_at, state, approvals_needed, approvers, rule)
       VALUES (@approval_id, @agent, @tool, @fingerprint, @action, @amount_value, @amount_currency, @payment_id, @invoice_id, @asked_call_id, @asked_at, @expires_at, 'pending', @approvals_needed, @approvers, @rule)`,
    );
    this.voteRows = db.prepare<[string], VoteRow>('SELECT person, decision, via, authenticated, token_sha256, note, at FROM approval_votes WHERE approval_id = ? ORDER BY at, person');
    this.insertVote = db.prepare(
      'INSERT INTO approval_votes (approval_id, person, decision, via, authenticated, token_sha256, note, at) VALUES (@approval_id, @person, @decision, @via, @authenticated, @token_sha256, @note, @at)',
    );
    this.voteEvents = db.prepare<[string], { arguments: string | null }>(
      "SELECT arguments FROM audit_log INDEXED BY audit_call WHERE call_id = ? AND kind = 'event' AND reason IN ('approval_given', 'approval_approved', 'approval_rejected')",
    );
    this.deleteVote = db.prepare('DELETE FROM approval_votes WHERE approval_id = ? AND person = ?');
    this.recentRows = db.prepare<[string], Row>("SELECT * FROM approvals WHERE state != 'pending' AND asked_at >= ? ORDER BY asked_at DESC LIMIT 50");
    this.setState = db.prepare(
      `UPDATE approvals SET state = @state, decided_by = COALESCE(@decided_by, decided_by), decided_at = COALESCE(@decided_at, decided_at),
              used_call_id = COALESCE(@used_call_id, used_call_id), used_at = COALESCE(@used_at, used_at)
       WHERE approval_id = @approval_id`,
    );
    this.overdue = db.prepare<[string], Row>("SELECT * FROM approvals WHERE state IN ('pending', 'approved') AND expires_at <= ? ORDER BY asked_at");
    this.pendingRows = db.prepare<[], Row>("SELECT * FROM approvals WHERE state IN ('pending', 'approved') ORDER BY asked_at");
  }

  get(approvalId: string): Approval | null {
    const row = this.byId.get(approvalId);
    return row ? this.withVotes(row) : null;
  }

  private withVotes(row: Row): Approval {
    const votes: Vote[] = this.voteRows.all(row.approval_id).map((vote) => ({
      person: vote.person,
      decision: vote.decision,
      via: vote.via,
      authenticated: vote.authenticated === 1,
      tokenSha256: vote.token_sha256,
      note: vote.note,
      at: vote.at,
    }));
    // Approved by a version before 0.6, which kept one name and no votes.
    if (votes.length === 0 && row.decided_by !== null && row.decided_at !== null && row.state !== 'expired') {
      votes.push({ person: row.decided_by, decision: row.state === 'rejected' ? 'rejected' : 'approved', via: 'cli', authenticated: false, tokenSha256: null, note: null, at: row.decided_at });
    }
    const approval = fromRow(row, votes);
    for (const vote of votes) vote.counts = this.voteCounts(approval, vote, approval.approvers);
    return approval;
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
      approvals_needed: init.needed ?? 1,
      approvers: init.approvers ? JSON.stringify(init.approvers) : null,
      rule: init.rule ?? null,
    };
    const who = row.approvals_needed > 1 ? `${row.approvals_needed} different people` : 'a person';
    const whom = init.approvers ? ` (of ${namesInWords(init.approvers)})` : '';
    immediate(this.db, () => {
      this.insertRow.run(row);
      this.event(fromRow(row), init.transport, 'approval_asked', `Agent "${init.agent}" asked ${who}${whom} to approve: ${init.action}. It expires at ${formatUtc(row.expires_at)}.`, {
        asked_by_call: init.callId,
        approvals_needed: row.approvals_needed,
        approvers: init.approvers ?? null,
      });
    });
    return fromRow(row);
  }

  /**
   * The yes votes that count for the server using these approvals now (voteCounts), by name.
   */
  countedApprovers(approval: Approval, demand: ApprovalDemand | null = null): string[] {
    const allowed = demand?.approvers ?? approval.approvers;
    return approval.votes.filter((vote) => vote.decision === 'approved' && this.voteCounts(approval, vote, allowed)).map((vote) => vote.person);
  }

  /**
   * Whether one person's vote counts. Without a people file, every vote does (0.5's OS user names). With one, the
   * person must be an approver in it, named by the policy when it names approvers, authenticated with the token it
   * lists now, and the vote must be in the hash chain as the event its decision wrote: a row put into the approvals
   * tables by hand, with no such event, does not count.
   */
  private voteCounts(approval: Approval, vote: Vote, allowed: readonly string[] | null): boolean {
    if (allowed !== null && !allowed.includes(vote.person)) return false;
    const people = this.people();
    if (people === null) return true;
    const person = people.people.get(vote.person);
    if (!vote.authenticated || person === undefined || !hasRole(person, 'approver') || vote.tokenSha256 !== person.tokenSha256) return false;
    return this.voteEvents.all(approval.approvalId).some((row) => {
      try {
        const recorded = JSON.parse(row.arguments ?? '{}') as Record<string, unknown>;
        return recorded.by === vote.person && recorded.authenticated === true && recorded.token_sha256 === vote.tokenSha256 && recorded.decision === vote.decision;
      } catch {
        return false;
      }
    });
  }

  /** What a person runs to approve this one, as printed in messages; with a people file, under their name. */
  approveCommand(approvalId: string): string {
    return this.command(this.people() === null ? ['approve', approvalId] : ['approve', approvalId, '--as', 'NAME']);
  }

  /**
   * Whether the call may go ahead on this approval: same agent, same arguments and amount, approved by enough people
   * who count under the policy and people file in force now, unused, unexpired. Runs inside the gate's transaction;
   * an expiry it notices is recorded there.
   */
  check(approvalId: string, agent: string, fingerprint: string, transport: string, demand: ApprovalDemand | null = null): UseCheck {
    const approval = this.get(approvalId);
    const deny = (reason: ApprovalDenial, message: string, pending = false): UseCheck => ({ ok: false, reason, message, pending });
    if (!approval) return deny('approval_unknown', `There is no approval ${approvalId}. Call again without approval_id to ask for one.`);
    if (approval.agent !== agent) return deny('approval_wrong_agent', `Approval ${approvalId} was asked for by another agent; agent "${agent}" cannot use it.`);
    // A spent approval says so first, whatever the repeat asks: "use the same arguments" would lead nowhere.
    if (approval.state === 'used') {
      return deny('approval_used', `Approval ${approvalId} was already used by call ${approval.usedCallId ?? '?'}; an approval is good for one call. Call again without approval_id to ask for a new one.`);
    }
    if (approval.fingerprint !== fingerprint) {
      return deny('approval_mismatch', `Approval ${approvalId} was given for exactly this: ${approval.action}. This call asks for something else; repeat the approved call with the same arguments, or call without approval_id to ask for a new approval.`);
    }
    if (this.expireIfOverdue(approval, transport)) {
      return deny('approval_expired', `Approval ${approvalId} expired at ${formatUtc(approval.expiresAt)}${approval.state === 'approved' ? ' before it was used' : ' before anyone approved it'}. Call again without approval_id to ask for a new one.`);
    }
    switch (approval.state) {
      case 'pending': {
        const given = approverNames(approval);
        const so = given.length > 0 ? `${namesInWords(given)} approved it; ${approval.needed - given.length} more approval(s) are needed` : 'Nobody has approved it yet';
        return deny('approval_pending', `Approval ${approvalId} is still waiting: ${so}. Ask ${this.askWhom(approval)} to approve it (before ${formatUtc(approval.expiresAt)}), then repeat this call.`, true);
      }
      case 'rejected':
        return deny('approval_rejected', `Approval ${approvalId} was rejected by ${approval.decidedBy ?? 'a person'} at ${formatUtc(approval.decidedAt ?? approval.askedAt)}. Do not repeat this call.`);
      case 'expired':
        return deny('approval_expired', `Approval ${approvalId} expired at ${formatUtc(approval.expiresAt)}. Call again without approval_id to ask for a new one.`);
      case 'approved': {
        const counted = this.countedApprovers(approval, demand);
        const needed = Math.max(approval.needed, demand?.needed ?? 1);
        if (counted.length >= needed) return { ok: true, approval };
        return deny(
          'approval_pending',
          `Approval ${approvalId} has ${counted.length} of the ${needed} approvals it needs under the policy and people in force now${counted.length > 0 ? ` (${namesInWords(counted)})` : ''}. Ask another approver to approve it in the console or with \`${this.approveCommand(approvalId)}\`, then repeat this call.`,
          true,
        );
      }
    }
  }

  /** Who to ask, in words: the approvers the policy names (or any approver) and where they approve. */
  askWhom(approval: Approval, someone = 'a person'): string {
    const people = this.people();
    if (people === null) return `${someone} to run \`${this.approveCommand(approval.approvalId)}\``;
    const names = approval.approvers ?? [...people.people.values()].filter((person) => hasRole(person, 'approver')).map((person) => person.name);
    const already = new Set(approverNames(approval));
    const left = names.filter((name) => !already.has(name));
    return `${left.length > 0 ? `an approver (${namesInWords(left).replace(' and ', ' or ')})` : 'an approver'} in the console (${this.consoleUrl() ?? '/console on the HTTP server'}) or with \`${this.approveCommand(approval.approvalId)}\``;
  }

  /** Spends an approval on the call that used it; joins the caller's transaction. */
  markUsed(approval: Approval, callId: string, transport: string): void {
    const now = this.clock().toISOString();
    const approvers = this.countedApprovers(approval);
    this.setState.run({ approval_id: approval.approvalId, state: 'used', decided_by: null, decided_at: null, used_call_id: callId, used_at: now });
    this.event(approval, transport, 'approval_used', `Call ${callId} used approval ${approval.approvalId} (approved by ${namesInWords(approvers)}): ${approval.action}.`, { used_by_call: callId, approvers });
  }

  /**
   * One person's decision, from the console or the command line. Only a pending, unexpired approval can be decided,
   * by someone allowed to: with a people file, an approver the policy names (or any approver). One no rejects it; it
   * is approved once `needed` different people said yes.
   */
  decide(approvalId: string, decision: 'approved' | 'rejected', by: Decider | string): DecideResult {
    const decider: Decider = typeof by === 'string' ? { name: by, via: 'cli', authenticated: false, tokenSha256: null, roles: null } : by;
    const note = decider.note?.trim().slice(0, 500) || null;
    return immediate(this.db, () => {
      const approval = this.get(approvalId);
      const transport = decider.via;
      if (!approval) return { ok: false, approval: null, message: `There is no approval ${approvalId}; \`${this.command(['approvals'])}\` lists the pending ones.` };
      if (this.expireIfOverdue(approval, transport)) {
        return { ok: false, approval: { ...approval, state: 'expired' }, message: `Approval ${approvalId} expired at ${formatUtc(approval.expiresAt)}; nothing was ${decision}. The agent must ask again.` };
      }
      // An approved call not used yet still takes votes: a late no stops it, and a yes counts where the policy has
      // since asked for more approvals than it had.
      if (approval.state !== 'pending' && approval.state !== 'approved') {
        const names = approverNames(approval);
        const decided = approval.decidedAt ? `${approval.state === 'used' ? 'approved' : approval.state} by ${approval.state === 'rejected' ? (approval.decidedBy ?? '?') : namesInWords(names)} at ${formatUtc(approval.decidedAt)}` : approval.state;
        const used = approval.state === 'used' && approval.usedAt ? `, and used by call ${approval.usedCallId ?? '?'} at ${formatUtc(approval.usedAt)}` : '';
        return { ok: false, approval, message: `Approval ${approvalId} was already ${decided}${used}; nothing changed.` };
      }
      const people = this.people();
      if (people !== null) {
        // Under a people file, only its people decide, as it lists them now.
        const listed = people.people.get(decider.name);
        if (!listed || !decider.authenticated || decider.tokenSha256 !== listed.tokenSha256) {
          return { ok: false, forbidden: true, approval, message: `${decider.name} did not sign in with the personal token the people file ${people.file} lists for them, so may not decide anything; nothing changed.` };
        }
        if (!hasRole(listed, 'approver')) return { ok: false, forbidden: true, approval, message: `${decider.name} is not an approver in the people file, so may not approve or reject anything; nothing changed.` };
      }
      if (decider.roles !== null && !decider.roles.includes('approver')) {
        return { ok: false, forbidden: true, approval, message: `${decider.name} is not an approver in the people file, so may not approve or reject anything; nothing changed.` };
      }
      if (approval.approvers !== null && !approval.approvers.includes(decider.name)) {
        return { ok: false, forbidden: true, approval, message: `Only ${namesInWords(approval.approvers)} may decide agent "${approval.agent}"'s ${approval.tool} calls (its policy's approvers); ${decider.name} may not. Nothing changed.` };
      }
      const earlier = approval.votes.find((vote) => vote.person === decider.name);
      if (earlier && this.voteCounts(approval, earlier, approval.approvers)) {
        return { ok: false, approval, message: `${decider.name} already ${earlier.decision} ${approvalId}; ${Math.max(0, approval.needed - this.countedApprovers(approval).length)} more approval(s) must come from other people. Nothing changed.` };
      }
      const now = this.clock().toISOString();
      const vote: Vote = { person: decider.name, decision, via: decider.via, authenticated: decider.authenticated, tokenSha256: decider.tokenSha256, note, at: now, counts: true };
      // A vote under this name that does not count (made under another people file, or put in by hand) gives way.
      if (earlier) this.deleteVote.run(approvalId, decider.name);
      this.insertVote.run({ approval_id: approvalId, person: vote.person, decision, via: vote.via, authenticated: vote.authenticated ? 1 : 0, token_sha256: vote.tokenSha256, note, at: now });
      const votes = [...approval.votes.filter((other) => other !== earlier), vote];
      // The event that makes the vote count is written below, in this transaction; until then it is taken on trust here.
      const approvers = approverNames({ votes });
      const complete = decision === 'rejected' || approvers.length >= approval.needed;
      const state: ApprovalState = decision === 'rejected' ? 'rejected' : complete ? 'approved' : 'pending';
      if (complete) this.setState.run({ approval_id: approvalId, state, decided_by: decision === 'rejected' ? decider.name : approvers.join(', '), decided_at: now, used_call_id: null, used_at: null });
      const decided: Approval = { ...approval, votes, state, ...(complete ? { decidedBy: decision === 'rejected' ? decider.name : approvers.join(', '), decidedAt: now } : {}) };
      const where = decider.via === 'console' ? 'in the console' : `with \`mollie-invoice-mcp ${decision === 'approved' ? 'approve' : 'reject'}\``;
      const signedIn = decider.authenticated ? '' : ' (OS user name; not authenticated)';
      const count = approval.needed > 1 && decision === 'approved' ? ` (${approvers.length} of ${approval.needed})` : '';
      const noted = note !== null ? ` Note: ${note}` : '';
      this.event(
        decided,
        transport,
        decision === 'rejected' ? 'approval_rejected' : complete ? 'approval_approved' : 'approval_given',
        `${decider.name}${signedIn} ${decision} approval ${approvalId} ${where}${count}: ${approval.action}.${complete && decision === 'approved' && approvers.length > 1 ? ` Approved by ${namesInWords(approvers)}.` : ''}${noted}`,
        {
          by: decider.name,
          decision,
          via: decider.via,
          authenticated: decider.authenticated,
          // Public (the people file lists it), and what ties this event to the vote it records.
          token_sha256: decider.tokenSha256,
          approvers,
          approvals_needed: approval.needed,
          ...(note !== null ? { note } : {}),
        },
      );
      return { ok: true, approval: decided };
    });
  }

  /** A failed attempt to decide, under a name whose token did not match: an audit event, never the token. */
  refusedSignIn(approvalId: string, name: string, via: 'cli' | 'console'): void {
    const approval = this.get(approvalId);
    this.audit.append({
      call_id: approvalId,
      kind: 'event',
      agent: approval?.agent ?? null,
      transport: via,
      tool: approval?.tool ?? null,
      payment_id: approval?.paymentId ?? null,
      invoice_id: approval?.invoiceId ?? null,
      reason: 'approval_sign_in_failed',
      reason_message: `Someone tried to decide approval ${approvalId} as "${name}" with a token that is not theirs; nothing was decided.`,
      action: approval?.action ?? null,
      arguments: JSON.stringify({ approval_id: approvalId, claimed: name, via }),
    });
  }

  /** Approvals decided, used or expired, asked since `sinceIso`, newest first, at most 50. */
  recent(sinceIso: string): Approval[] {
    return this.recentRows.all(sinceIso).map((row) => this.withVotes(row));
  }

  /** Approvals waiting for a person, after recording the expiry of every overdue one. */
  pending(): Approval[] {
    return this.waiting().filter((approval) => approval.state === 'pending');
  }

  /** Approvals waiting for a person or, approved, for their agent's repeat (a late no can still stop those). */
  waiting(): Approval[] {
    immediate(this.db, () => {
      for (const row of this.overdue.all(this.clock().toISOString())) this.expireIfOverdue(fromRow(row), 'cli');
    });
    return this.pendingRows.all().map((row) => this.withVotes(row));
  }

  private expireIfOverdue(approval: Approval, transport: string): boolean {
    if (approval.state === 'expired') return true;
    if (approval.state !== 'pending' && approval.state !== 'approved') return false;
    if (this.clock().getTime() < Date.parse(approval.expiresAt)) return false;
    this.setState.run({ approval_id: approval.approvalId, state: 'expired', decided_by: null, decided_at: null, used_call_id: null, used_at: null });
    this.event(approval, transport, 'approval_expired', `Approval ${approval.approvalId} expired at ${formatUtc(approval.expiresAt)} ${approval.state === 'approved' ? 'unused' : 'without a decision'}: ${approval.action}.`, {});
    return true;
  }

  private event(approval: Approval, transport: string, reason: string, message: string, extra: Record<string, unknown>): void {
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
      rule: approval.rule,
      action: approval.action,
      arguments: JSON.stringify({ approval_id: approval.approvalId, ...extra }),
    };
    this.audit.append(fields);
  }
}
