/**
 * The one error shape a model sees, `{ code, message, retryable }` plus what helps it act (the field, Mollie's own
 * words, when to retry). Every failure, from bad input to Mollie being down, becomes one of these; never a stack trace.
 */
import { z } from 'zod';
import { MollieError, type WriteEffect } from './mollie/errors.js';
import { MoneyError } from './mollie/money.js';

export const ERROR_CODES = [
  'invalid_input',
  'policy_denied',
  'not_found',
  'mollie_rejected',
  'mollie_unavailable',
  'rate_limited',
  'confirmation_declined',
  'approval_required',
  'conflict',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const toolErrorSchema = z.strictObject({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  retryable: z.boolean(),
  reason: z.string().optional().describe('For policy_denied: the rule that denied the call, e.g. per_call_exceeded.'),
  field: z.string().nullable().optional().describe('The argument (or Mollie field) the error is about.'),
  status: z.number().int().optional().describe("Mollie's HTTP status, for mollie_rejected."),
  title: z.string().optional(),
  detail: z.string().optional(),
  approval_id: z.string().optional().describe('For approval_required: the approval a person must give; repeat the call with it once approved.'),
  retry_after_seconds: z.number().optional(),
});
export type StructuredToolError = z.infer<typeof toolErrorSchema>;


export class ToolError extends Error {
  override readonly name = 'ToolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: { retryable?: boolean; field?: string | null; reason?: string; effect?: WriteEffect } = {},
  ) {
    super(message);
  }

  get retryable(): boolean {
    return this.options.retryable ?? false;
  }

  get effect(): WriteEffect {
    return this.options.effect ?? 'none';
  }

  toStructured(): StructuredToolError {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.options.reason !== undefined ? { reason: this.options.reason } : {}),
      ...(this.options.field !== undefined ? { field: this.options.field } : {}),
    };
  }
}

export interface NormalizedFailure {
  error: StructuredToolError;
  /** Whether a failed call may have moved money anyway: then its budget stays reserved and the outcome is 'unknown'. */
  effect: WriteEffect;
  /** Mollie's own problem, for the audit row. */
  mollie: Record<string, unknown> | null;
  /** An error this server did not expect: a bug, logged with its stack. */
  unexpected: boolean;
}

export function normalizeFailure(error: unknown): NormalizedFailure {
  if (error instanceof ToolError) return { error: error.toStructured(), effect: error.effect, mollie: null, unexpected: false };
  if (error instanceof MollieError) {
    const structured: StructuredToolError = { code: error.code, message: error.message, retryable: error.retryable };
    if (error.mollie) {
      structured.status = error.mollie.status;
      structured.title = error.mollie.title;
      structured.detail = error.mollie.detail;
      structured.field = error.mollie.field;
    }
    if (error.retryAfterSeconds !== null) structured.retry_after_seconds = error.retryAfterSeconds;
    if (error.effect === 'unknown') {
      structured.message = `${error.message} Whether Mollie acted on it is unknown: check get_payment_status before trying again.`;
    }
    return { error: structured, effect: error.effect, mollie: error.mollie ? { ...error.mollie } : null, unexpected: false };
  }
  if (error instanceof MoneyError) return { error: { code: 'invalid_input', message: error.message, retryable: false, field: 'amount' }, effect: 'none', mollie: null, unexpected: false };
  return {
    error: {
      code: 'mollie_unavailable',
      message: 'The server failed unexpectedly while handling this call (its log has the details); whether it took effect is unknown: check get_payment_status before trying again.',
      retryable: false,
    },
    effect: 'unknown',
    mollie: null,
    unexpected: true,
  };
}
