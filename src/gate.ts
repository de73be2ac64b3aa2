/**
 * The gate every tool call passes, the same for every tool: validate the input, decide, write the decision row, run
 * the handler, write the outcome row, and return exactly the declared output shape. The decision row is written
 * before any money moves, in the same transaction that checks the caps and reserves the amount; if it cannot be
 * written, the call is denied.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { AuditFields, AuditLog } from './audit/audit-log.js';
import { listCalls } from './audit/call-entries.js';
import { redactArguments } from './audit/redact.js';
import { immediate, type SqliteDatabase } from './database.js';
import { formatMinorUnits } from './mollie/money.js';
import type { MolliePort } from './mollie/port.js';
import type { PaymentRecords } from './payments/payment-records.js';
import { authorize, checkCaps, type Caller, type Decision } from './policy/decide.js';
import type { PolicySet } from './policy/policy.js';
import type { Reservations } from './policy/reservations.js';
import type { CallPlan, ServerSettings, ToolContext, ToolDefinition } from './tool-definition.js';
import { normalizeFailure, type StructuredToolError } from './tool-error.js';

export type TransportName = 'stdio' | 'http' | 'in-process';

/** Where a call came from: the caller the transport established, never anything from the arguments. */
export interface CallOrigin {
  caller: Caller;
  transport: TransportName;
  clientName: string | null;
}

export interface GateReply {
  isError: boolean;
  structuredContent: Record<string, unknown>;
  text: string;
}

export interface GateOptions {
  db: SqliteDatabase;
  audit: AuditLog;
  reservations: Reservations;
  payments: PaymentRecords;
  mollie: MolliePort;
  /** The policies in force at this moment. */
  policies: () => PolicySet;
  settings: ServerSettings;
  tools: readonly ToolDefinition[];
  logger: Logger;
  clock?: () => Date;
}

const MAX_TOOL_NAME = 64;

export class Gate {
  private readonly tools: ReadonlyMap<string, ToolDefinition>;
  private readonly clock: () => Date;

  constructor(private readonly options: GateOptions) {
    this.tools = new Map(options.tools.map((tool) => [tool.name, tool]));
    this.clock = options.clock ?? (() => new Date());
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
    const started = performance.now();
    const callId = randomUUID();
    const elapsed = (): number => Math.round(performance.now() - started);
    const base: Pick<AuditFields, 'call_id' | 'agent' | 'transport' | 'client_name' | 'tool'> = {
      call_id: callId,
      agent: origin.caller.agent,
      transport: origin.transport,
      client_name: origin.clientName === null ? null : origin.clientName.slice(0, 128),
      tool: name.slice(0, MAX_TOOL_NAME),
    };
    const log = this.options.logger.child({ audit_id: callId, agent: origin.caller.agent, tool: base.tool });

    const refuse = (decisionFields: Partial<AuditFields>, error: StructuredToolError): GateReply => {
      try {
        this.options.audit.append({ ...base, kind: 'decision', decision: 'denied', arguments: redactArguments(rawArgs), ...decisionFields });
        this.options.audit.append({ ...base, kind: 'outcome', outcome: 'error', error_code: error.code, error_message: error.message, duration_ms: elapsed() });
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the audit rows of a refused call');
      }
      log.info({ decision: 'denied', reason: decisionFields.reason, code: error.code }, 'Call refused');
      return errorReply(callId, error);
    };

    const tool = this.tools.get(name);
    if (!tool) {
      return refuse(
        { reason: 'unknown_tool', reason_message: `There is no tool "${base.tool}".`, action: `call ${base.tool}` },
        { code: 'invalid_input', message: `There is no tool "${base.tool}"; the tools are ${[...this.tools.keys()].join(', ')}.`, retryable: false, field: null },
      );
    }
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
    const policies = this.options.policies();
    const authorized = authorize(policies, origin.caller, tool.name, this.options.mollie.mode);
    const decisionBase: Partial<AuditFields> = { arguments: redactArguments(args), action, policy_sha256: authorized.agent?.sha256 ?? null };
    if (!authorized.decision.allowed || !authorized.agent || !authorized.tool) {
      return refuse(
        { ...decisionBase, ...decisionColumns(authorized.decision) },
        policyDenied(authorized.decision),
      );
    }
    const agentPolicy = authorized.agent;
    const toolPolicy = authorized.tool;
    const agent = agentPolicy.agent;

    const context: ToolContext = {
      mollie: this.options.mollie,
      payments: this.options.payments,
      auditCalls: { list: (filter, limit, beforeSeq) => listCalls(this.options.db, { ...filter, excludeCallId: callId }, limit, beforeSeq) },
      caller: { agent, logScope: toolPolicy.scope },
      settings: this.options.settings,
    };

    const finish = (fields: Partial<AuditFields>): void => {
      this.options.audit.append({ ...base, kind: 'outcome', duration_ms: elapsed(), ...fields });
    };

    let plan: CallPlan;
    try {
      plan = await tool.prepare(args, context);
    } catch (error) {
      // The policy let the agent use the tool; what it asked for could not be done (no such payment, not paid...).
      const failure = normalizeFailure(error);
      if (failure.unexpected) log.error({ err: error }, 'Preparing the call failed unexpectedly');
      try {
        this.options.audit.append({ ...base, ...decisionBase, ...decisionColumns(authorized.decision), kind: 'decision', decision: 'allowed', invoice_id: stringArg(args, 'invoice_id'), payment_id: stringArg(args, 'payment_id') });
        finish({ outcome: 'error', error_code: failure.error.code, error_message: failure.error.message, mollie_error: failure.mollie ? JSON.stringify(failure.mollie) : null });
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the audit rows of a failed call');
      }
      log.info({ decision: 'allowed', outcome: 'error', code: failure.error.code }, 'Call failed before the decision on amounts');
      return errorReply(callId, failure.error);
    }

    const money = plan.money;
    const moneyColumns: Partial<AuditFields> = money
      ? { amount_value: formatMinorUnits(money.minor, money.currency), amount_currency: money.currency }
      : {};
    const planColumns: Partial<AuditFields> = {
      ...decisionBase,
      ...moneyColumns,
      invoice_id: plan.invoiceId,
      payment_id: plan.paymentId,
      idempotency_key: plan.idempotencyKey,
    };

    let decision: Decision;
    try {
      decision = immediate(this.options.db, () => {
        const now = this.clock();
        const decided = checkCaps(
          agentPolicy,
          tool.name,
          { name: tool.name, ...tool.capabilities },
          toolPolicy,
          { money, redirectUrl: plan.redirectUrl, readsAgent: plan.readsAgent },
          this.options.reservations,
          now,
        );
        this.options.audit.append({ ...base, ...planColumns, ...decisionColumns(decided), kind: 'decision' });
        if (decided.allowed) this.options.reservations.reserve({ callId, agent, tool: tool.name, money: money?.reuse ? null : money, at: now.toISOString() });
        return decided;
      });
    } catch (error) {
      log.error({ err: error }, 'Could not record the decision; denying the call');
      return errorReply(callId, {
        code: 'policy_denied',
        reason: 'audit_unavailable',
        message: 'The call was denied because its decision could not be written to the audit log; nothing was sent to Mollie. Try again shortly; if it persists, the operator should check the database file.',
        retryable: true,
      });
    }
    if (!decision.allowed) {
      const error = policyDenied(decision);
      try {
        finish({ outcome: 'error', error_code: error.code, error_message: error.message });
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the outcome row of a denied call');
      }
      log.info({ decision: 'denied', reason: decision.reason }, 'Call denied');
      return errorReply(callId, error);
    }

    try {
      const done = await tool.run(plan, context);
      try {
        immediate(this.options.db, () => {
          finish({ outcome: 'ok', action: done.done, invoice_id: done.invoiceId, payment_id: done.paymentId, refund_id: done.refundId });
          this.options.reservations.settle(callId, done.moneyMoved ? 'spent' : 'released');
        });
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
        immediate(this.options.db, () => {
          finish({ outcome, error_code: failure.error.code, error_message: failure.error.message, mollie_error: failure.mollie ? JSON.stringify(failure.mollie) : null });
          // A definite failure gives the budget back; an unknown one keeps it until someone learns the truth.
          this.options.reservations.settle(callId, outcome === 'unknown' ? 'unknown' : 'released');
        });
      } catch (auditError) {
        log.error({ err: auditError }, 'Could not write the outcome row of a failed call');
      }
      log.warn({ decision: 'allowed', outcome, code: failure.error.code }, 'Call failed');
      return errorReply(callId, failure.error);
    }
  }
}

function decisionColumns(decision: Decision): Partial<AuditFields> {
  return { decision: decision.allowed ? 'allowed' : 'denied', reason: decision.reason, reason_message: decision.message, rule: decision.rule };
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
      field ??= issue.keys[0] ?? null;
      return `unknown argument${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}: remove ${issue.keys.length > 1 ? 'them' : 'it'}`;
    }
    field ??= path || null;
    const top = String(issue.path[0] ?? '');
    if (issue.code === 'invalid_type' && issue.path.length === 1 && !Object.hasOwn(given, top)) return `${path} is required`;
    return issue.message.startsWith(path) ? issue.message : `${path}: ${issue.message}`;
  });
  return { message: `Invalid arguments: ${parts.join('; ')}.`, field };
}
