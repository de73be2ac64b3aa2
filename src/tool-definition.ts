/**
 * What a tool is: a declaration. Name, description for the model, zod input and output, honest annotations, what the
 * call moves (decided in `prepare`, which may read but never write), and a handler that does the work. The handler
 * never checks permissions or writes audit rows; the gate does that for every tool alike.
 */
import type { z } from 'zod';
import type { CallFilter, CallEntry } from './audit/call-entries.js';
import type { MolliePort } from './mollie/port.js';
import type { InvoiceLocks } from './payments/invoice-locks.js';
import type { PaymentRecords } from './payments/payment-records.js';
import type { LogScope, ToolCapabilities } from './policy/policy.js';
import type { ToolError } from './tool-error.js';

export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** Settings that come from the operator, not from the agent. */
export interface ServerSettings {
  redirectUrl: string | null;
  webhookUrl: string | null;
  /** How long a new payment link stays payable when the call gives no expires_at (MOLLIE_MCP_LINK_VALID_DAYS). */
  linkValidDays: number;
}

export interface ToolContext {
  mollie: MolliePort;
  payments: PaymentRecords;
  /** One call at a time changes what an invoice can be paid with, in every process on the database. */
  locks: InvoiceLocks;
  clock: () => Date;
  auditCalls: { list(filter: CallFilter, limit: number, beforeSeq?: number): { entries: CallEntry[]; nextCursor: string | null } };
  caller: { agent: string; logScope: LogScope };
  /** This call's id in the audit log, for the records it leaves at Mollie (refund metadata). */
  callId: string;
  settings: ServerSettings;
}

/** What one call will do, worked out before the policy decides on it. */
export interface CallPlan {
  /**
   * The amount the call is about. `reuse`: it hands back something already created (an open pay link), so the per-call
   * cap and the currency still apply but nothing new counts towards the daily totals.
   */
  money: { minor: number; currency: string; reuse?: boolean } | null;
  redirectUrl: string | null;
  /** Whose audit entries the call reads: an agent, or null for every agent. Only for tools that read the log. */
  readsAgent?: string | null;
  invoiceId: string | null;
  paymentId: string | null;
  /** The payment link the call is about (pl_...); the decision row names it where there is no payment. */
  paymentLinkId?: string | null;
  /** Written into the decision row, so a retry after a crash can be matched to what Mollie saw. */
  idempotencyKey: string | null;
  /**
   * What prepare found that makes the call impossible as asked (a refund over what remains), when `money` is known:
   * the gate reports the policy's caps first, if they refuse it too, and this otherwise. Never allowed.
   */
  refusal?: ToolError;
  /**
   * Calls with the same key within the window are refused as a duplicate (an agent retrying a refund that went
   * through); null when the call may repeat (allow_repeat) or the tool has no such guard.
   */
  repeat?: { key: string; windowMs: number; what: string } | null;
}

export interface CallResult<Result> {
  result: Result;
  /** False when the call turned out to move nothing (a reused pay link): its budget reservation is released. */
  moneyMoved: boolean;
  /** One clause for the audit summary and the text reply, e.g. "created payment tr_x". */
  done: string;
  invoiceId: string | null;
  paymentId: string | null;
  /** The payment link the call ended up about, when it has no payment (yet) to name. */
  paymentLinkId?: string | null;
  refundId: string | null;
}

/** A call whose decision was written but whose process died before its outcome: what the decision row recorded. */
export interface InterruptedCall {
  callId: string;
  agent: string;
  paymentId: string | null;
  invoiceId: string | null;
  amount: { value: string; currency: string } | null;
  idempotencyKey: string | null;
  decidedAt: string;
}

/** What Mollie says became of an interrupted call. */
export interface Reconciled {
  happened: boolean;
  /** "refund re_x of 20.00 EUR is pending", or why it did not happen. */
  done: string;
  paymentId: string | null;
  refundId: string | null;
}

export interface ToolDefinition<Args = unknown, Plan extends CallPlan = CallPlan, Result = unknown> {
  name: string;
  title: string;
  description: string;
  input: z.ZodType<Args>;
  /** The success shape without audit_id; the gate adds audit_id to every result. */
  output: z.ZodObject;
  annotations: ToolAnnotations;
  capabilities: Omit<ToolCapabilities, 'name'>;
  /** "refund 20.00 EUR of payment tr_x": what was asked, in words, for the audit log. */
  describe(args: Args): string;
  /**
   * The amount asked for, from the arguments alone (no Mollie), for the row of a call refused before prepare ran; the
   * currency is null when only Mollie knows it (a refund is in its payment's currency).
   */
  requested?(args: Args): { value: string; currency: string | null } | null;
  /** What the call will move and touch; may read Mollie and local records, never writes. */
  prepare(args: Args, context: ToolContext): Promise<Plan>;
  run(plan: Plan, context: ToolContext): Promise<CallResult<Result>>;
  /**
   * Asks Mollie, read-only, whether an interrupted call of this tool took effect (start-up reconciliation). Tools that
   * only read have none: an interrupted read changed nothing.
   */
  reconcile?(call: InterruptedCall, context: Pick<ToolContext, 'mollie' | 'payments' | 'locks' | 'clock'>): Promise<Reconciled>;
}

/** Keeps each tool's own types while letting the registry hold them side by side. */
export function defineTool<Args, Plan extends CallPlan, Result>(definition: ToolDefinition<Args, Plan, Result>): ToolDefinition {
  return definition as unknown as ToolDefinition;
}
