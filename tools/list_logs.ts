/** Read back what agents did: the audit log, call by call, newest first, with one plain sentence per call. */
import { z } from 'zod';
import { CursorError, decodeCursor } from '../src/audit/call-entries.js';
import { printable } from '../src/audit/printable.js';
import { defineTool, type CallPlan } from '../src/tool-definition.js';
import { ToolError } from '../src/tool-error.js';
import { amountOut, invoiceId, isoTime, paymentId, paymentLinkId } from './fields.js';

const isoInstant = (name: string) =>
  z
    .string({ error: `${name} must be an ISO 8601 time such as "2026-11-21T14:00:00Z"` })
    .max(40)
    .refine((text) => /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text) && !Number.isNaN(Date.parse(text)), {
      message: `${name} must be an ISO 8601 time such as "2026-11-21T14:00:00Z" or a date such as "2026-11-21"`,
    });

const input = z.strictObject({
  agent: z.string().min(1).max(64).optional().describe('Only calls by this agent (an agent with scope own sees only its own).'),
  tool: z.string().min(1).max(64).optional().describe('Only calls of this tool.'),
  decision: z.enum(['allowed', 'denied']).optional(),
  outcome: z.enum(['ok', 'error', 'pending', 'unknown']).optional().describe('pending: no outcome recorded yet; unknown: Mollie may or may not have acted.'),
  payment_id: paymentId.optional(),
  payment_link_id: paymentLinkId.optional().describe('Only calls about this payment link ("pl_...").'),
  invoice_id: invoiceId.optional(),
  since: isoInstant('since').optional().describe('Calls at or after this time (ISO 8601).'),
  until: isoInstant('until').optional().describe('Calls before this time (ISO 8601).'),
  limit: z.number({ error: 'limit must be a whole number from 1 to 200' }).int('limit must be a whole number from 1 to 200').min(1, 'limit must be at least 1').max(200, 'limit is at most 200').default(50),
  cursor: z.string().max(64).optional().describe('next_cursor from the previous page.'),
}).refine((args) => args.payment_id === undefined || args.payment_link_id === undefined, { path: ['payment_link_id'], message: 'give payment_id or payment_link_id, not both' });
type Args = z.output<typeof input>;

const entry = z.strictObject({
  audit_id: z.string(),
  at: isoTime,
  agent: z.string().nullable(),
  tool: z.string().nullable(),
  decision: z.enum(['allowed', 'denied']),
  reason: z.string().nullable(),
  rule: z.string().nullable().describe('The rule that decided, e.g. "policies/refund-desk.yaml: tools.refund.limits.EUR.per_call = 100.00".'),
  policy_sha256: z.string().nullable().describe('sha256 of the policy file in force when the call was decided.'),
  outcome: z.enum(['ok', 'error', 'pending', 'unknown']),
  invoice_id: z.string().nullable(),
  payment_id: z.string().nullable(),
  payment_link_id: z.string().nullable(),
  refund_id: z.string().nullable(),
  amount: amountOut.nullable(),
  summary: z.string(),
  duration_ms: z.number().int().nullable(),
});

const output = z.strictObject({
  entries: z.array(entry),
  next_cursor: z.string().nullable().describe('Pass as cursor for the next (older) page; null on the last page.'),
});
type Result = z.output<typeof output>;

interface Plan extends CallPlan {
  args: Args;
  beforeSeq: number | undefined;
}

function instant(text: string | undefined): string | undefined {
  return text === undefined ? undefined : new Date(text).toISOString();
}

export const listLogs = defineTool<Args, Plan, Result>({
  name: 'list_logs',
  title: 'List the audit log',
  description:
    'Lists recorded tool calls, newest first: who called what, for which invoice or payment, whether the policy allowed it and how it ended, ' +
    'each with a one-sentence summary. Filter by agent, tool, decision, outcome, payment_id, payment_link_id, invoice_id, since/until; page with cursor.',
  input,
  output,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  capabilities: { movesMoney: false, redirects: false, readsAuditLog: true, approvable: false, actsOnPayments: false, withdrawsLinks: false },

  describe(args) {
    const whose = args.agent !== undefined ? ` of agent ${args.agent}` : '';
    return `read the audit log${whose}`;
  },

  async prepare(args, context) {
    let beforeSeq: number | undefined;
    if (args.cursor !== undefined) {
      try {
        beforeSeq = decodeCursor(args.cursor);
      } catch (error) {
        if (error instanceof CursorError) throw new ToolError('invalid_input', error.message, { field: 'cursor' });
        throw error;
      }
    }
    return {
      money: null,
      redirectUrl: null,
      readsAgent: args.agent ?? (context.caller.logScope === 'own' ? context.caller.agent : null),
      invoiceId: args.invoice_id ?? null,
      paymentId: args.payment_id ?? null,
      paymentLinkId: args.payment_link_id ?? null,
      idempotencyKey: null,
      args,
      beforeSeq,
    };
  },

  async run(plan, context) {
    const { args } = plan;
    const page = context.auditCalls.list(
      {
        agent: args.agent ?? (context.caller.logScope === 'own' ? context.caller.agent : undefined),
        tool: args.tool,
        decision: args.decision,
        outcome: args.outcome,
        paymentId: args.payment_id ?? args.payment_link_id,
        invoiceId: args.invoice_id,
        since: instant(args.since),
        until: instant(args.until),
      },
      args.limit,
      plan.beforeSeq,
    );
    return {
      result: {
        entries: page.entries.map((item) => ({
          audit_id: item.audit_id,
          at: item.at,
          agent: item.agent,
          tool: item.tool,
          decision: item.decision,
          reason: item.reason,
          rule: item.rule === null ? null : printable(item.rule),
          policy_sha256: item.policy_sha256,
          outcome: item.outcome,
          invoice_id: item.invoice_id,
          payment_id: item.payment_id,
          payment_link_id: item.payment_link_id,
          refund_id: item.refund_id,
          amount: item.amount,
          summary: item.summary,
          duration_ms: item.duration_ms,
        })),
        next_cursor: page.nextCursor,
      },
      moneyMoved: false,
      done: `returned ${page.entries.length} entries`,
      invoiceId: null,
      paymentId: null,
      refundId: null,
    };
  },
});
