/**
 * The gate every tool call passes, the same for every tool: validate the input, decide, write the decision row, run
 * the handler, write the outcome row, and return exactly the declared output shape. The decision row is written
 * before any money moves, in the same transaction that checks the caps and reserves the amount; if it cannot be
 * written, the call is denied.
 */
import { randomUUID } from './crypto-on-demand.js';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { AuditFields, AuditLog } from './audit/audit-log.js';
import { listCalls } from './audit/call-entries.js';
import { redactArguments } from './audit/redact.js';
import { immediateWhenFree, type Durability, type SqliteDatabase } from './database.js';
import { formatMinorUnits } from './mollie/money.js';
import type { MolliePort } from './mollie/port.js';
import type { PaymentRecords } from './payments/payment-records.js';
import { approvalFingerprint, formatUtc, namesInWords, type Approval, type Approvals } from './approvals/approvals.js';
import { approvalNeeded, authorize, checkCaps, checkPaymentScope, checkRate, type ApprovalRule, type Caller, type Decision, type UsageReader } from './policy/decide.js';
import { CallTimes } from './policy/call-times.js';
import type { PolicySet, ToolPolicy } from './policy/policy.js';
import type { Reservations } from './policy/reservations.js';
import { OpenReads } from './open-reads.js';
import { ClientConfirmations, type Claim } from './confirmations/client-confirmations.js';
import { InvoiceLocks } from './payments/invoice-locks.js';
import type { CallPlan, ServerSettings, ToolContext, ToolDefinition } from './tool-definition.js';
import { normalizeFailure, type NormalizedFailure, type StructuredToolError } from './tool-error.js';
import { callLineLogger } from './log.js';
import { printable, quoted } from './audit/printable.js';
import { RefusalLimiter } from './http/refusal-limiter.js';

export type TransportName = 'stdio' | 'http' | 'in-process';

/** A person's answer to a confirmation prompt shown by the client (MCP elicitation). */
export type ConfirmationAnswer = 'accepted' | 'declined' | 'canceled' | 'no_answer';

/** Asks the person at the client a yes/no question; resolves 'no_answer' after `timeoutMs` or on any failure. */
export type ConfirmInClient = (message: string, timeoutMs: number) => Promise<ConfirmationAnswer>;

/** How the person at a client that can show a form is asked. */
export type InClientConfirmation =
  /** 2025-11-25 (stdio, an HTTP session): the server asks while the call waits (elicitation/create). */
  | { kind: 'prompt'; ask: ConfirmInClient }
  /**
   * 2026-07-28: the call ends with the question ("input required"), and the client repeats it with the person's
   * answer and the token it was given; `answer` is null on the first request.
   */
  | { kind: 'repeat'; answer: RepeatedAnswer | null };

export interface RepeatedAnswer {
  token: string;
  answer: Exclude<ConfirmationAnswer, 'no_answer'>;
}

/** Where a call came from: the caller the transport established, never anything from the arguments. */
export interface CallOrigin {
  caller: Caller;
  transport: TransportName;
  clientName: string | null;
  /** Present when the client declared it can show a form (elicitation); otherwise approvals go out of band. */
  confirm?: InClientConfirmation | null;
}

export interface ApprovalSettings {
  /** How long an out-of-band approval may wait to be given and used. */
  ttlMs: number;
  /** How long a confirmation prompt in the client waits for an answer. */
  confirmTimeoutMs: number;
  /** False: every approval goes out of band, even for clients that declare they can ask. */
  askInClient: boolean;
}

export interface GateReply {
  isError: boolean;
  structuredContent: Record<string, unknown>;
  text: string;
  /** The call waits for the person at a 2026-07-28 client: ask this, and expect the repeat with this token. */
  inputRequired?: { question: string; token: string };
}

export interface GateOptions {
  db: SqliteDatabase;
  audit: AuditLog;
  reservations: Reservations;
  approvals: Approvals;
  approvalSettings: ApprovalSettings;
  payments: PaymentRecords;
  mollie: MolliePort;
  /** The policies in force at this moment. */
  policies: () => PolicySet;
  settings: ServerSettings;
  tools: readonly ToolDefinition[];
  logger: Logger;
  clock?: () => Date;
  /** Refused calls one agent may make a minute with rows of their own; the rest are counted in a summary event. */
  refusedCallsPerMinute?: number;
  /**
   * True when a people file names the approvers: only their authenticated decisions count, so a yes in the agent's
   * own client never does, and every approval goes out of band.
   */
  namedApprovers?: () => boolean;
  /** Told about every approval asked, after it is recorded (MOLLIE_MCP_APPROVAL_NOTIFY_URL); must not throw or block. */
  onApprovalAsked?: (approval: Approval) => void;
}

const MAX_TOOL_NAME = 64;

export class Gate {
  private readonly tools: ReadonlyMap<string, ToolDefinition>;
  private readonly clock: () => Date;
  private readonly openReads: OpenReads;
  private readonly confirmations: ClientConfirmations;
  private readonly callLines: Logger;
  readonly locks: InvoiceLocks;
  private readonly callTimes: CallTimes;
  /** What the caps and the rate limit count: reservations, and when each call was made. */
  private readonly usage: UsageReader;
  /**
   * Calls refused before anything happens cost the agent nothing; past a budget per agent they are counted in one
   * event a minute instead of two fsynced rows each, so a token holder cannot grow the log as fast as it can send.
   */
  private readonly refusals: RefusalLimiter;

  constructor(private readonly options: GateOptions) {
    this.tools = new Map(options.tools.map((tool) => [tool.name, tool]));
    const perMinute = options.refusedCallsPerMinute ?? 60;
    this.refusals = new RefusalLimiter('refused_call', { burst: perMinute, perMinute }, (event) => {
      options.audit.append({
        call_id: randomUUID(),
        kind: 'event',
        agent: event.source,
        reason: 'refused_calls_summarised',
        reason_message: `${event.count} tool call(s) by agent "${event.source}" between ${event.first} and ${event.last} were refused without rows of their own (${Object.entries(event.reasons).map(([reason, count]) => `${reason} x${count}`).join(', ')}): the agent was over ${perMinute} refused calls a minute.`,
        rule: `at most ${perMinute} refused calls a minute per agent (MOLLIE_MCP_REFUSED_CALLS_PER_MINUTE)`,
        action: 'call tools',
        arguments: JSON.stringify(event),
      });
      return Promise.resolve();
    }, options.logger);
    this.clock = options.clock ?? (() => new Date());
    this.openReads = new OpenReads(options.db);
    this.confirmations = new ClientConfirmations(options.db);
    this.callTimes = new CallTimes(options.db);
    this.usage = {
      recentCalls: (agent, now) => this.callTimes.recentCalls(agent, now),
      reservedSince: (agent, tool, currency, since) => options.reservations.reservedSince(agent, tool, currency, since),
      unapprovedSince: (agent, tool, currency, since) => options.reservations.unapprovedSince(agent, tool, currency, since),
    };
    this.locks = new InvoiceLocks(options.db, this.instanceId, this.clock);
    this.callLines = callLineLogger(options.logger);
  }

  /**
   * Marks this process's open calls, so a restart can tell its own interrupted calls from another process's live ones.
   * Unique by host, process and start time; nothing secret, so it needs no node:crypto at start (crypto-on-demand.ts).
   */
  readonly instanceId = `${hostname()}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

  /** A duplicate of a recent call with the same repeat key (same refund of the same payment), or null. */
  private repeatCheck(plan: CallPlan, now: Date): Decision | null {
    if (!plan.repeat) return null;
    const earlier = this.options.reservations.latestRepeat(plan.repeat.key, new Date(now.getTime() - plan.repeat.windowMs).toISOString());
    if (!earlier) return null;
    const minutes = Math.round((now.getTime() - Date.parse(earlier.reserved_at)) / 60_000);
    const what =
      earlier.refund_id !== null
        ? `refund ${earlier.refund_id}`
        : earlier.outcome === 'unknown' || earlier.state === 'unknown'
          ? `call ${earlier.call_id}, whose outcome at Mollie is unknown`
          : `call ${earlier.call_id}, still in flight`;
    const unsure = earlier.refund_id === null;
    return {
      allowed: false,
      reason: 'duplicate_call',
      rule: `an identical call within ${Math.round(plan.repeat.windowMs / 60_000)} minutes is refused unless allow_repeat is true`,
      message:
        `The same ${plan.repeat.what} was asked for ${minutes === 0 ? 'less than a minute' : minutes === 1 ? 'a minute' : `${minutes} minutes`} ago by agent "${earlier.agent}": ${what}. ` +
        (unsure
          ? 'Check with get_payment_status whether it went through before trying again; only if it did not, repeat the call with allow_repeat: true.'
          : 'If a second one is really intended, repeat the call with allow_repeat: true.'),
    };
  }

  /** The tools this caller's policy allows, in registry order: nothing else is listed. */
  toolsFor(caller: Caller): ToolDefinition[] {
    const policies = this.options.policies();
    return this.options.tools.filter((tool) => authorize(policies, caller, tool.name, this.options.mollie.mode).decision.allowed);
  }

  private readonly inFlight = new Set<Promise<GateReply>>();

  /** Runs one call through the gate; calls in flight are tracked so shutdown can let them finish. */
  call(origin: CallOrigin, name: string, rawArgs: unknown): Promise<GateReply> {
    const running = this.pass(origin, name, rawArgs);
    this.inFlight.add(running);
    void running.finally(() => this.inFlight.delete(running)).catch(() => undefined);
    return running;
  }

  /** Writes the counts of refused calls not yet summarised; before the database closes. */
  close(): void {
    this.refusals.closeNow();
    for (const timer of this.questionTimers) clearTimeout(timer);
    this.questionTimers.clear();
  }

  /** One timer per question this process asked: it is closed soon after it expires, not at the next settling pass. */
  private readonly questionTimers = new Set<NodeJS.Timeout>();

  private closeWhenExpired(expiresAt: string, log: CallLog): void {
    const timer = setTimeout(() => {
      this.questionTimers.delete(timer);
      this.closeUnansweredQuestions().catch((error: unknown) => log.error({ err: error }, 'Could not close an unanswered question; the next settling pass will'));
    }, Math.max(0, Date.parse(expiresAt) - this.clock().getTime()) + 1_000);
    timer.unref();
    this.questionTimers.add(timer);
  }

  /** Resolves when no call is in flight, or after `timeoutMs`; true if everything finished. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => setTimeout(resolve, left).unref())]);
    }
    return true;
  }

  private async pass(origin: CallOrigin, name: string, rawArgs: unknown): Promise<GateReply> {
    // The global performance, not node:perf_hooks: Node loads it on first use, so a starting server does not.
    const started = performance.now();
    let callId = randomUUID();
    // The repeat of a call that asked the person at a 2026-07-28 client goes on as that call, under its audit id.
    let claimed: Extract<Claim, { ok: true }> | null = null;
    let unclaimed: Extract<Claim, { ok: false }> | null = null;
    const repeated = origin.confirm?.kind === 'repeat' ? origin.confirm.answer : null;
    if (repeated) {
      try {
        const claim = await this.claimAnswer(origin, String(name), repeated);
        if (claim.ok) {
          claimed = claim;
          callId = claim.question.callId;
        } else unclaimed = claim;
      } catch (error) {
        this.options.logger.child({ audit_id: callId, agent: origin.caller.agent }).error({ err: error }, 'Could not record the answer a repeated call carries; denying the call');
        return errorReply(callId, AUDIT_UNAVAILABLE);
      }
    }
    const elapsed = (): number => Math.round(performance.now() - started);
    const tool = this.tools.get(name);
    const base: Pick<AuditFields, 'call_id' | 'agent' | 'transport' | 'client_name' | 'tool'> = {
      call_id: callId,
      agent: origin.caller.agent,
      transport: origin.transport,
      client_name: origin.clientName === null ? null : origin.clientName.slice(0, 128),
      // Only a tool's own name goes into the tool column: anything else a caller sends is quoted, escaped, in the text.
      tool: tool ? tool.name : null,
    };
    // Problems are logged through the redacting logger, made for this call only when one happens; the call's own
    // line, ids and codes only, through callLines.
    let problemLog: Logger | undefined;
    const problems = (): Logger => (problemLog ??= this.options.logger.child({ audit_id: callId, agent: origin.caller.agent, tool: base.tool }));
    const line = { audit_id: callId, agent: origin.caller.agent, tool: base.tool };
    const log: CallLog = {
      info: (fields: Record<string, unknown>, message: string): void => this.callLines.info({ ...line, ...fields }, message),
      warn: (fields: Record<string, unknown>, message: string): void => this.callLines.warn({ ...line, ...fields }, message),
      error: (fields: Record<string, unknown>, message: string): void => problems().error(fields, message),
    };

    // Rows of calls that only read are not fsynced one by one (see Durability); the rest are.
    let durability: Durability = 'full';
    const refuse = async (decisionFields: Partial<AuditFields>, error: StructuredToolError): Promise<GateReply> => {
      const who = origin.caller.agent ?? '(no agent)';
      // The repeat of a call that asked a person closes that call: its rows are always written.
      if (!claimed && !this.refusals.admit(who).record) {
        this.refusals.note(who, String(decisionFields.reason ?? error.code));
        log.info({ decision: 'denied', reason: decisionFields.reason, code: error.code, summarised: true }, 'Call refused (counted in a summary)');
        return errorReply(callId, { ...error, message: `${error.message} (This agent is over ${this.options.refusedCallsPerMinute ?? 60} refused calls a minute: this one is counted in a summary event of the audit log, not written on its own.)` });
      }
      try {
        await this.options.audit.appendRefusalWhenFree(base, { arguments: redactArguments(rawArgs), ...decisionFields }, error, elapsed(), durability);
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the audit rows of a refused call');
      }
      log.info({ decision: 'denied', reason: decisionFields.reason, code: error.code }, 'Call refused');
      return errorReply(callId, error);
    };

    if (unclaimed) {
      const message =
        unclaimed.why === 'used'
          ? `The answer this call carries was already counted (call ${unclaimed.callId}): a yes in the client counts once. Nothing was sent to Mollie; call ${quoted(String(name), MAX_TOOL_NAME)} again to ask the person again.`
          : `The answer this call carries is for no question this server asked this agent about ${quoted(String(name), MAX_TOOL_NAME)}. Nothing was sent to Mollie; call it again to ask the person.`;
      return refuse(
        { reason: 'confirmation_declined', reason_message: message, action: `call ${tool ? tool.name : quoted(String(name), MAX_TOOL_NAME)}`, arguments: redactArguments(rawArgs) },
        { code: 'confirmation_declined', reason: unclaimed.why === 'used' ? 'answer_used' : 'answer_unknown', message, retryable: false },
      );
    }
    if (!tool) {
      const asked = quoted(String(name), MAX_TOOL_NAME);
      return refuse(
        { reason: 'unknown_tool', reason_message: `There is no tool ${asked}.`, action: `call an unknown tool ${asked}` },
        { code: 'invalid_input', message: `There is no tool ${asked}; the tools are ${[...this.tools.keys()].join(', ')}.`, retryable: false, field: null },
      );
    }
    if (tool.annotations.readOnlyHint) durability = 'normal';
    const parsed = tool.input.safeParse(rawArgs ?? {});
    if (!parsed.success) {
      const problem = describeInvalidInput(parsed.error, rawArgs);
      return refuse(
        { reason: 'invalid_input', reason_message: problem.message, action: `call ${tool.name}` },
        { code: 'invalid_input', message: problem.message, retryable: false, field: problem.field },
      );
    }
    const args = parsed.data;
    const action = tool.describe(args);
    const authorized = authorize(this.options.policies(), origin.caller, tool.name, this.options.mollie.mode);
    // What the call asks for, from its arguments alone, so even a refused call's row shows the amount.
    const asked = tool.requested?.(args) ?? null;
    const askedColumns: Partial<AuditFields> = asked ? { amount_value: asked.value, amount_currency: asked.currency } : {};
    const decisionBase: Partial<AuditFields> = { arguments: redactArguments(args), action, policy_sha256: authorized.agent?.sha256 ?? null };
    if (!authorized.decision.allowed || !authorized.agent || !authorized.tool) {
      return refuse({ ...decisionBase, ...askedColumns, ...decisionColumns(authorized.decision) }, policyDenied(authorized.decision));
    }
    // The repeat of a call that asked a person was counted towards the rate limit when it asked (askForRepeat): it is
    // the same call, so its own mark does not count against it.
    const usage: UsageReader = claimed ? { ...this.usage, recentCalls: (who, now) => this.callTimes.recentCalls(who, now, callId) } : this.usage;
    const agentPolicy = authorized.agent;
    const toolPolicy = authorized.tool;
    const agent = agentPolicy.agent;
    // The rate limit, and which payments the agent may act on, before anything else: then Mollie is not even asked.
    const paymentId = stringArg(args, 'payment_id');
    const capabilities = { name: tool.name, ...tool.capabilities };
    const early =
      checkRate(agentPolicy, usage, this.clock()) ??
      checkPaymentScope(agentPolicy, tool.name, toolPolicy, capabilities, paymentId, paymentId !== null && this.options.payments.get(paymentId) !== null);
    if (early) return refuse({ ...decisionBase, ...askedColumns, payment_id: paymentId, ...decisionColumns(early) }, policyDenied(early));

    const context: ToolContext = {
      mollie: this.options.mollie,
      payments: this.options.payments,
      locks: this.locks,
      clock: this.clock,
      auditCalls: { list: (filter, limit, beforeSeq) => listCalls(this.options.db, { ...filter, excludeCallId: callId }, limit, beforeSeq) },
      caller: { agent, logScope: toolPolicy.scope },
      callId,
      settings: this.options.settings,
    };

    const finish = (fields: Partial<AuditFields>): void => {
      this.options.audit.append({ ...base, kind: 'outcome', duration_ms: elapsed(), ...fields }, durability);
    };

    /**
     * The call cannot be done as asked (no such payment, not paid, more than remains...), found before its amount met
     * the policy's caps: never an allowed decision. It counts towards the rate limit, as it may have read Mollie.
     */
    const notPossible = async (failure: NormalizedFailure, columns: Partial<AuditFields>): Promise<GateReply> => {
      const reason = failure.error.reason ?? 'precondition_failed';
      try {
        await immediateWhenFree(this.options.db, () => {
          this.options.audit.append({
            ...base,
            ...columns,
            kind: 'decision',
            decision: 'denied',
            reason,
            reason_message: failure.error.message,
            rule: `${tool.name}: what was asked cannot be done (${failure.error.code}), found before the policy's amount checks`,
          });
          finish({ outcome: 'error', error_code: failure.error.code, error_message: failure.error.message, mollie_error: failure.mollie ? JSON.stringify(failure.mollie) : null });
          if (claimed) this.callTimes.restamp(agent, callId, this.clock());
          else this.callTimes.record(agent, callId, this.clock());
        }, durability);
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the audit rows of a call that could not be done');
      }
      log.info({ decision: 'denied', reason, code: failure.error.code }, 'Call could not be done');
      return errorReply(callId, failure.error);
    };

    let plan: CallPlan;
    try {
      plan = await tool.prepare(args, context);
    } catch (error) {
      const failure = normalizeFailure(error);
      if (failure.unexpected) log.error({ err: error }, 'Preparing the call failed unexpectedly');
      return notPossible(failure, { ...decisionBase, ...askedColumns, invoice_id: stringArg(args, 'invoice_id'), payment_id: stringArg(args, 'payment_id') ?? stringArg(args, 'payment_link_id') });
    }

    const money = plan.money;
    const moneyColumns: Partial<AuditFields> = money
      ? { amount_value: formatMinorUnits(money.minor, money.currency), amount_currency: money.currency }
      : askedColumns;
    const planColumns: Partial<AuditFields> = {
      ...decisionBase,
      ...moneyColumns,
      invoice_id: plan.invoiceId,
      payment_id: plan.paymentId ?? plan.paymentLinkId ?? null,
      idempotency_key: plan.idempotencyKey,
    };

    const demand = { money, redirectUrl: plan.redirectUrl, readsAgent: plan.readsAgent };
    if (claimed) {
      // What the person answered holds for the call they were asked about and no other, whatever this call needs now;
      // and a no stays a no, even if the policy no longer asks.
      const refused = await this.refuseUnlessConfirmed(claimed, tool, args as Record<string, unknown>, money, origin, base, planColumns, started, log);
      if (refused) return refused;
    }
    if (plan.refusal) {
      // Something else is wrong with the call too; an amount over the policy's caps is what the log says first.
      const caps = checkCaps(agentPolicy, tool.name, capabilities, toolPolicy, demand, usage, this.clock());
      if (!caps.allowed) return refuse({ ...planColumns, ...decisionColumns(caps) }, policyDenied(caps));
      return notPossible(normalizeFailure(plan.refusal), planColumns);
    }
    const approvalRule = tool.capabilities.approvable ? approvalNeeded(agentPolicy, tool.name, toolPolicy, money, usage, this.clock()) : null;
    const fingerprint = tool.capabilities.approvable ? approvalFingerprint(tool.name, args as Record<string, unknown>, money) : null;
    const approvalId = approvalRule ? stringArg(args, 'approval_id') : null;
    /** Set once the person at the client said yes; written into the decision row. */
    let confirmedInClient: string | null = null;

    if (approvalRule && approvalId === null) {
      // Nobody is asked about a call the caps would deny anyway: then the decision below denies it with the real reason.
      const now = this.clock();
      const precheck = this.repeatCheck(plan, now) ?? checkCaps(agentPolicy, tool.name, capabilities, toolPolicy, demand, usage, now);
      if (precheck.allowed) {
        const request: ApprovalRequest = { callId, base, planColumns, rule: approvalRule, tool, toolPolicy, fingerprint: fingerprint!, plan, agent, started };
        const clientMayConfirm = agentPolicy.confirmInClient ?? origin.transport !== 'http';
        // A named approver, or more than one person, cannot answer a prompt in the agent's client.
        const peopleDecide = (this.options.namedApprovers?.() ?? false) || toolPolicy.approvalsNeeded > 1;
        const confirm = origin.confirm;
        if (!confirm || !this.options.approvalSettings.askInClient || !clientMayConfirm || peopleDecide) return this.askOutOfBand(request, origin, log, elapsed);
        if (confirm.kind === 'repeat' && claimed === null) return this.askForRepeat(request, origin, log);
        const answer = confirm.kind === 'prompt' ? await this.askInClient(request, origin, confirm.ask, log) : await this.afterAnswer(request, whereAsked(origin), claimed!.answer, log);
        if (answer.reply) return answer.reply;
        confirmedInClient = answer.note;
      }
    }

    let decision: Decision;
    let pendingApproval: string | null = null;
    // A denial's outcome row goes into the same transaction as its decision row.
    const finishRefused = (refused: Decision, approvalPending: string | null): void => {
      const error = refusalError(refused, approvalPending);
      finish({ outcome: 'error', error_code: error.code, error_message: error.message });
    };
    try {
      decision = await immediateWhenFree(this.options.db, () => {
        const now = this.clock();
        // Decided on the policy in force now, not the one read before the call was prepared: an edit that lowered a
        // cap or removed the agent while Mollie was being read applies to this call.
        const current = authorize(this.options.policies(), origin.caller, tool.name, this.options.mollie.mode);
        const columns: Partial<AuditFields> = { ...planColumns, policy_sha256: current.agent?.sha256 ?? null };
        const refuseHere = (refused: Decision): Decision => {
          this.options.audit.append({ ...base, ...columns, ...decisionColumns(refused), kind: 'decision' });
          finishRefused(refused, pendingApproval);
          return refused;
        };
        if (!current.decision.allowed || !current.agent || !current.tool) return refuseHere(current.decision);
        const nowRule = tool.capabilities.approvable ? approvalNeeded(current.agent, tool.name, current.tool, money, usage, now) : null;
        let approval: Approval | null = null;
        if (nowRule && approvalId !== null) {
          const checked = this.options.approvals.check(approvalId, agent, fingerprint!, origin.transport, { needed: current.tool.approvalsNeeded, approvers: current.tool.approvers });
          if (!checked.ok) {
            if (checked.pending) pendingApproval = approvalId;
            return refuseHere({ allowed: false, reason: checked.reason, rule: nowRule.rule, message: checked.message });
          }
          approval = checked.approval;
        }
        let decided = checkCaps(current.agent, tool.name, capabilities, current.tool, demand, usage, now);
        if (decided.allowed) decided = this.repeatCheck(plan, now) ?? decided;
        if (decided.allowed && nowRule && confirmedInClient !== null && approval === null && ((this.options.namedApprovers?.() ?? false) || current.tool.approvalsNeeded > 1)) {
          // The people file (or approvals_needed) arrived while the person at the client was being asked.
          decided = { allowed: false, reason: 'approval_required', rule: nowRule.rule, message: `${nowRule.message} A yes in the client no longer counts: named approvers must approve it. Call again to ask them.` };
        } else if (decided.allowed && nowRule && (approval || confirmedInClient)) {
          // The person comes first: it is what an auditor looks for in this row and in the call's summary.
          const who = approval ? `Approved by ${namesInWords(this.options.approvals.countedApprovers(approval, { needed: current.tool.approvalsNeeded, approvers: current.tool.approvers }))} (approval ${approval.approvalId}).` : confirmedInClient!;
          decided = { allowed: true, reason: approval ? 'approved' : 'confirmed', rule: `${decided.rule}; ${nowRule.rule}`, message: `${who} ${decided.message}` };
        } else if (decided.allowed && nowRule) {
          // Nobody was asked (the check before asking denied the call and budgets changed since, or the policy now
          // wants a person where it did not): the call must not go ahead. Fail closed; calling again asks a person.
          decided = { allowed: false, reason: 'approval_required', rule: nowRule.rule, message: `${nowRule.message} Nobody has approved this call yet; call again to ask a person.` };
        }
        if (!decided.allowed) return refuseHere(decided);
        const decisionRow = this.options.audit.append({ ...base, ...columns, ...decisionColumns(decided), kind: 'decision' });
        if (claimed) this.callTimes.restamp(agent, callId, now);
        else this.callTimes.record(agent, callId, now);
        // A call that moves no money needs no budget, only a mark that it is in flight: one small row, not a
        // reservation and its indexes.
        if (tool.capabilities.movesMoney) {
          this.options.reservations.reserve({
            callId,
            agent,
            tool: tool.name,
            money: money?.reuse ? null : money,
            // The decision row's own time, hashed in the chain: audit verify checks the reservation's date against it.
            at: decisionRow.at,
            repeatKey: plan.repeat?.key ?? null,
            instanceId: this.instanceId,
            approved: approval !== null || confirmedInClient !== null,
          });
        } else {
          this.openReads.open(callId, this.instanceId, now.toISOString());
        }
        if (approval) this.options.approvals.markUsed(approval, callId, origin.transport);
        return decided;
      }, durability);
    } catch (error) {
      log.error({ err: error }, 'Could not record the decision; denying the call');
      return errorReply(callId, AUDIT_UNAVAILABLE);
    }
    if (!decision.allowed) {
      const error = refusalError(decision, pendingApproval);
      log.info({ decision: 'denied', reason: decision.reason }, 'Call denied');
      return errorReply(callId, error);
    }

    try {
      const done = await tool.run(plan, context);
      try {
        await immediateWhenFree(this.options.db, () => {
          // reason nothing_moved: the budget went back (a reused link), which audit verify checks the reservations by.
          finish({ outcome: 'ok', action: done.done, invoice_id: done.invoiceId, payment_id: done.paymentId ?? done.paymentLinkId ?? null, refund_id: done.refundId, reason: tool.capabilities.movesMoney && !done.moneyMoved ? 'nothing_moved' : null });
          if (tool.capabilities.movesMoney) this.options.reservations.settle(callId, done.moneyMoved ? 'spent' : 'released');
          else this.openReads.close(callId);
        }, durability);
      } catch (auditError) {
        // The money has moved; failing the call now would invite a retry. The missing outcome shows as pending.
        log.error({ err: auditError }, 'Could not write the outcome row of a completed call');
      }
      log.info({ decision: 'allowed', outcome: 'ok', duration_ms: elapsed() }, 'Call completed');
      const structuredContent = { ...(done.result as Record<string, unknown>), audit_id: callId };
      return { isError: false, structuredContent, text: `${capitalize(done.done)}.\n${JSON.stringify(structuredContent)}` };
    } catch (error) {
      const failure = normalizeFailure(error);
      if (failure.unexpected) log.error({ err: error }, 'The tool failed unexpectedly');
      const outcome = failure.effect === 'unknown' ? 'unknown' : 'error';
      try {
        await immediateWhenFree(this.options.db, () => {
          finish({ outcome, error_code: failure.error.code, error_message: failure.error.message, mollie_error: failure.mollie ? JSON.stringify(failure.mollie) : null });
          // A definite failure gives the budget back; an unknown one keeps it until someone learns the truth.
          if (tool.capabilities.movesMoney) this.options.reservations.settle(callId, outcome === 'unknown' ? 'unknown' : 'released');
          else this.openReads.close(callId);
        }, durability);
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the outcome row of a failed call');
      }
      log.warn({ decision: 'allowed', outcome, code: failure.error.code }, 'Call failed');
      return errorReply(callId, failure.error);
    }
  }

  /**
   * No prompt is possible: the call fails with an approval id a person can approve on the command line; the agent
   * repeats the exact call with it. The pending approval and both rows of this call are written together.
   */
  private async askOutOfBand(request: ApprovalRequest, origin: CallOrigin, log: CallLog, elapsed: () => number): Promise<GateReply> {
    const action = approvalAction(request);
    try {
      const approval = await immediateWhenFree(this.options.db, () => {
        const asked = this.options.approvals.ask({
          agent: request.agent,
          tool: request.tool.name,
          fingerprint: request.fingerprint,
          action,
          money: request.plan.money,
          paymentId: request.plan.paymentId,
          invoiceId: request.plan.invoiceId,
          callId: request.callId,
          transport: origin.transport,
          ttlMs: this.options.approvalSettings.ttlMs,
          needed: request.toolPolicy.approvalsNeeded,
          approvers: request.toolPolicy.approvers,
          rule: request.rule.rule,
        });
        const message = `${request.rule.message} Waiting for ${asked.needed > 1 ? `${asked.needed} people` : 'a person'} to approve it (approval ${asked.approvalId}, until ${formatUtc(asked.expiresAt)}).`;
        this.options.audit.append({ ...request.base, ...request.planColumns, kind: 'decision', decision: 'denied', reason: 'approval_required', reason_message: message, rule: request.rule.rule });
        this.options.audit.append({ ...request.base, kind: 'outcome', outcome: 'error', error_code: 'approval_required', error_message: message, duration_ms: elapsed() });
        return asked;
      });
      log.info({ decision: 'denied', reason: 'approval_required', approval_id: approval.approvalId }, 'Call waits for a person\'s approval');
      this.options.onApprovalAsked?.(approval);
      const who = approval.needed > 1 ? `${approval.needed} different people must approve it first` : 'A person must approve it first';
      return errorReply(request.callId, {
        code: 'approval_required',
        reason: 'approval_required',
        message:
          `${request.rule.message} Nothing was sent to Mollie. ${who}: ask ${this.options.approvals.askWhom(approval, 'them')} ` +
          `(before ${formatUtc(approval.expiresAt)}), then call ${request.tool.name} again ` +
          `with the same arguments and approval_id "${approval.approvalId}".`,
        retryable: true,
        approval_id: approval.approvalId,
      });
    } catch (error) {
      log.error({ err: error }, 'Could not record the approval request; denying the call');
      return errorReply(request.callId, AUDIT_UNAVAILABLE);
    }
  }

  /**
   * The client can show a form: ask the person there, yes or no, before anything is decided. The question and the
   * answer are audit events of this call. Anything but a clear yes stops the call.
   */
  private async askInClient(request: ApprovalRequest, origin: CallOrigin, confirm: ConfirmInClient, log: CallLog): Promise<Answered> {
    const action = approvalAction(request);
    const where = whereAsked(origin);
    const timeoutMs = this.options.approvalSettings.confirmTimeoutMs;
    const question = questionFor(request, action);
    const event = (reason: string, message: string): Promise<unknown> =>
      immediateWhenFree(this.options.db, () => this.options.audit.append({ ...request.base, ...request.planColumns, kind: 'event', reason, reason_message: message, rule: request.rule.rule, action }));
    try {
      await event('confirmation_asked', `Asked ${where}: ${question}`);
    } catch (error) {
      log.error({ err: error }, 'Could not record the confirmation prompt; denying the call');
      return { reply: errorReply(request.callId, AUDIT_UNAVAILABLE) };
    }
    const answer = await confirm(question, timeoutMs);
    try {
      await event(`confirmation_${answer}`, `${said(where, answer, timeoutMs)}: ${action}.`);
    } catch (error) {
      log.error({ err: error }, 'Could not record the confirmation answer; denying the call');
      return { reply: errorReply(request.callId, AUDIT_UNAVAILABLE) };
    }
    return this.afterAnswer(request, where, answer, log);
  }

  /**
   * A 2026-07-28 client: the question is recorded (an audit event, and a row any replica can find by its token) and
   * the call ends asking it. Nothing is decided and nothing reserved until the repeat brings the answer.
   */
  private async askForRepeat(request: ApprovalRequest, origin: CallOrigin, log: CallLog): Promise<GateReply> {
    const action = approvalAction(request);
    const question = questionFor(request, action);
    const columns: Partial<AuditFields> = { ...request.base, ...request.planColumns, rule: request.rule.rule, action };
    try {
      const asked = await immediateWhenFree(this.options.db, () => {
        const now = this.clock();
        this.options.audit.append({ ...columns, call_id: request.callId, kind: 'event', reason: 'confirmation_asked', reason_message: `Asked ${whereAsked(origin)}: ${question}` });
        // Counted towards the rate limit now, once: the repeat is the same call.
        this.callTimes.record(request.agent, request.callId, now);
        return this.confirmations.ask({ callId: request.callId, agent: request.agent, tool: request.tool.name, fingerprint: request.fingerprint, columns }, now, this.options.approvalSettings.confirmTimeoutMs);
      });
      log.info({ decision: 'asking', expires_at: asked.expiresAt }, 'Asked the person at the client; the call goes on when the client repeats it with the answer');
      this.closeWhenExpired(asked.expiresAt, log);
      return { isError: false, structuredContent: {}, text: question, inputRequired: { question, token: asked.token } };
    } catch (error) {
      log.error({ err: error }, 'Could not record the confirmation prompt; denying the call');
      return errorReply(request.callId, AUDIT_UNAVAILABLE);
    }
  }

  /**
   * The repeat of a call that asked the person at a 2026-07-28 client: refused (with the call's rows, never summarised)
   * unless the answer was a yes, given in time, about this very call: the same tool, arguments and amount.
   */
  private async refuseUnlessConfirmed(
    claimed: Extract<Claim, { ok: true }>,
    tool: ToolDefinition,
    args: Record<string, unknown>,
    money: CallPlan['money'],
    origin: CallOrigin,
    base: ApprovalRequest['base'],
    planColumns: Partial<AuditFields>,
    started: number,
    log: CallLog,
  ): Promise<GateReply | null> {
    const asked = claimed.question;
    const mismatch = asked.fingerprint !== approvalFingerprint(tool.name, args, money);
    if (!mismatch && claimed.answer === 'accepted') return null;
    const rule = typeof asked.columns.rule === 'string' ? asked.columns.rule : null;
    const timeoutMs = this.options.approvalSettings.confirmTimeoutMs;
    const message = mismatch
      ? `The person at the client was asked about this call with other arguments or another amount than this repeat has, so nothing was sent to Mollie. Call ${tool.name} again to ask about this one.`
      : `${capitalize(said(whereAsked(origin), claimed.answer, timeoutMs))}, so nothing was sent to Mollie.`;
    return this.declined(base, { ...planColumns, rule }, mismatch ? 'answer_mismatch' : claimed.answer, message, started, log);
  }

  /** A call the person's answer (or its absence) ends: its refusal rows, its log line, its error. */
  private async declined(base: ApprovalRequest['base'], columns: Partial<AuditFields>, reason: string, message: string, started: number, log: CallLog): Promise<GateReply> {
    try {
      await this.options.audit.appendRefusalWhenFree(base, { ...columns, reason: 'confirmation_declined', reason_message: message }, { code: 'confirmation_declined', message }, Math.round(performance.now() - started));
    } catch (error) {
      log.error({ err: error }, 'Could not write the audit rows of a declined call');
    }
    log.info({ decision: 'denied', reason: 'confirmation_declined', answer: reason }, reason === 'answer_mismatch' ? 'The repeat of the call does not match what the person was asked' : 'The person at the client did not approve the call');
    return errorReply(base.call_id, { code: 'confirmation_declined', reason, message, retryable: false });
  }

  /**
   * Records the answer a repeat carries, once, as the event of the call that asked: before anything else of the
   * repeat is looked at, so every later refusal closes that call.
   */
  private claimAnswer(origin: CallOrigin, tool: string, repeated: RepeatedAnswer): Promise<Claim> {
    return immediateWhenFree(this.options.db, () => {
      const claim = this.confirmations.claim(repeated.token, origin.caller.agent, tool, repeated.answer, this.clock());
      if (claim.ok) {
        const { columns, callId } = claim.question;
        this.options.audit.append({
          ...columns,
          call_id: callId,
          kind: 'event',
          reason: `confirmation_${claim.answer}`,
          reason_message: `${said(whereAsked(origin), claim.answer, this.options.approvalSettings.confirmTimeoutMs)}: ${columns.action ?? tool}.`,
        });
      }
      return claim;
    });
  }

  /**
   * Closes the questions no repeat answered in time, as a prompt nobody answered is closed: the answer event, then the
   * refusal. Any replica may do it; the guard in closeUnanswered lets one.
   */
  async closeUnansweredQuestions(): Promise<number> {
    let closed = 0;
    for (const { token, question } of this.confirmations.overdue(this.clock())) {
      const timeoutMs = this.options.approvalSettings.confirmTimeoutMs;
      const where = question.columns.client_name ? `the person at ${printable(question.columns.client_name)}` : 'the person at the client';
      const message = `${capitalize(said(where, 'no_answer', timeoutMs))}: nobody repeated the call with an answer, so nothing was sent to Mollie.`;
      const done = await immediateWhenFree(this.options.db, () => {
        if (!this.confirmations.closeUnanswered(token, this.clock())) return false;
        const call = { ...question.columns, call_id: question.callId };
        this.options.audit.append({ ...call, kind: 'event', reason: 'confirmation_no_answer', reason_message: `${said(where, 'no_answer', timeoutMs)}: ${question.columns.action ?? question.tool}.` });
        this.options.audit.append({ ...call, kind: 'decision', decision: 'denied', reason: 'confirmation_declined', reason_message: message });
        this.options.audit.append({ call_id: question.callId, agent: question.agent, transport: question.columns.transport ?? null, client_name: question.columns.client_name ?? null, tool: question.tool, kind: 'outcome', outcome: 'error', error_code: 'confirmation_declined', error_message: message, duration_ms: null });
        return true;
      });
      if (done) closed += 1;
    }
    await immediateWhenFree(this.options.db, () => this.confirmations.prune(this.clock()));
    return closed;
  }

  /** A clear yes lets the call go on to its decision; anything else ends it, with its refusal rows. */
  private async afterAnswer(request: ApprovalRequest, where: string, answer: ConfirmationAnswer, log: CallLog): Promise<Answered> {
    // The server sees only what the client sent back: the row says so, for an auditor weighing it.
    if (answer === 'accepted') return { note: `Confirmed in the client (${said(where, 'accepted', 0)}, as the client reported: its word, not a person this server authenticated).` };

    const message = `${request.rule.message} ${capitalize(said(where, answer, this.options.approvalSettings.confirmTimeoutMs))}, so nothing was sent to Mollie.`;
    return { reply: await this.declined(request.base, { ...request.planColumns, rule: request.rule.rule }, answer, message, request.started, log) };
  }
}

type Answered = { reply: GateReply; note?: never } | { reply?: never; note: string };

function whereAsked(origin: CallOrigin): string {
  return origin.clientName ? `the person at ${printable(origin.clientName.slice(0, 128))}` : 'the person at the client';
}

function questionFor(request: ApprovalRequest, action: string): string {
  return `Agent "${request.agent}" wants to ${action}. ${request.rule.message} Approve it?`;
}

function said(where: string, answer: ConfirmationAnswer, timeoutMs: number): string {
  switch (answer) {
    case 'accepted':
      return `${where} approved it`;
    case 'declined':
      return `${where} declined it`;
    case 'canceled':
      return `${where} dismissed the prompt without answering`;
    case 'no_answer':
      return `${where} did not answer within ${Math.round(timeoutMs / 1000)} s`;
  }
}

/** How one call logs: its own line (ids and codes) at info or warn, and its problems, redacted, at error. */
interface CallLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const AUDIT_UNAVAILABLE: StructuredToolError = {
  code: 'policy_denied',
  reason: 'audit_unavailable',
  message: 'The call was denied because its decision could not be written to the audit log; nothing was sent to Mollie. Try again shortly; if it persists, the operator should check the database file.',
  retryable: true,
};

/** What the two ways of asking a person need to know about the call. */
interface ApprovalRequest {
  callId: string;
  base: Pick<AuditFields, 'call_id' | 'agent' | 'transport' | 'client_name' | 'tool'>;
  planColumns: Partial<AuditFields>;
  rule: ApprovalRule;
  tool: ToolDefinition;
  toolPolicy: ToolPolicy;
  fingerprint: string;
  plan: CallPlan;
  agent: string;
  started: number;
}

/** "refund 600.00 EUR of payment tr_x (invoice 2026-114)": what a person is asked to let happen. */
function approvalAction(request: ApprovalRequest): string {
  const money = request.plan.money;
  const amount = money ? ` ${formatMinorUnits(money.minor, money.currency)} ${money.currency}` : '';
  const payment = request.plan.paymentId ? ` of payment ${request.plan.paymentId}` : '';
  const invoice = request.plan.invoiceId ? ` (invoice ${request.plan.invoiceId})` : '';
  return `${request.tool.name.replace(/_/g, ' ')}${amount}${payment}${invoice}`;
}

function decisionColumns(decision: Decision): Partial<AuditFields> {
  return { decision: decision.allowed ? 'allowed' : 'denied', reason: decision.reason, reason_message: decision.message, rule: decision.rule };
}

/** The error a caller gets for a decision that refused its call. */
function refusalError(decision: Decision, pendingApproval: string | null): StructuredToolError {
  if (pendingApproval !== null) return { code: 'approval_required', reason: decision.reason, message: decision.message, retryable: true, approval_id: pendingApproval };
  if (decision.reason === 'duplicate_call') return { code: 'conflict', reason: decision.reason, message: decision.message, retryable: false, field: 'allow_repeat' };
  return policyDenied(decision);
}

function policyDenied(decision: Decision): StructuredToolError {
  return { code: 'policy_denied', reason: decision.reason, message: decision.message, retryable: decision.reason === 'rate_limit_exceeded' };
}

function errorReply(callId: string, error: StructuredToolError): GateReply {
  const structuredContent = { error, audit_id: callId };
  return { isError: true, structuredContent, text: `${error.code}: ${error.message}\n${JSON.stringify(structuredContent)}` };
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function stringArg(args: unknown, key: string): string | null {
  const value = (args as Record<string, unknown> | null)?.[key];
  return typeof value === 'string' ? value : null;
}

/** One message naming every bad argument and what is allowed, and the first bad field for `error.field`. */
export function describeInvalidInput(error: z.ZodError, rawArgs: unknown): { message: string; field: string | null } {
  const given = rawArgs !== null && typeof rawArgs === 'object' ? (rawArgs as Record<string, unknown>) : {};
  if (rawArgs !== undefined && rawArgs !== null && (typeof rawArgs !== 'object' || Array.isArray(rawArgs))) {
    return { message: 'The arguments must be an object of named fields.', field: null };
  }
  let field: string | null = null;
  const parts = error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      // Keys are the agent's text: echo them short, so a 100,000-character key cannot bloat the reply or the log.
      const shown = issue.keys.slice(0, 5).map((key) => JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}...` : key));
      field ??= issue.keys[0] !== undefined ? issue.keys[0].slice(0, 64) : null;
      const more = issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : '';
      return `unknown argument${issue.keys.length > 1 ? 's' : ''} ${shown.join(', ')}${more}: remove ${issue.keys.length > 1 ? 'them' : 'it'}`;
    }
    field ??= path || null;
    const top = String(issue.path[0] ?? '');
    if (issue.code === 'invalid_type' && issue.path.length === 1 && !Object.hasOwn(given, top)) return `${path} is required`;
    return issue.message.startsWith(path) ? issue.message : `${path}: ${issue.message}`;
  });
  return { message: `Invalid arguments: ${parts.join('; ')}.`, field };
}
