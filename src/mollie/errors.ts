/**
 * One error type for everything the Mollie port can report, with a code from the public contract, so the gate can
 * hand it to a model as `{ code, message, retryable }` without knowing which implementation raised it.
 */

export type MollieErrorCode = 'mollie_rejected' | 'not_found' | 'mollie_unavailable' | 'rate_limited';

/**
 * Whether a failed write certainly did nothing ('none') or may have moved money at Mollie ('unknown': a timeout,
 * a dropped connection, a 5xx). Callers keep budget reservations for 'unknown' until they learn the truth.
 */
export type WriteEffect = 'none' | 'unknown';

/** What Mollie itself said, from its error body. */
export interface MollieProblem {
  status: number;
  title: string;
  detail: string;
  field: string | null;
}

export interface MollieErrorInit {
  code: MollieErrorCode;
  message: string;
  retryable: boolean;
  effect?: WriteEffect;
  mollie?: MollieProblem;
  retryAfterSeconds?: number;
}

export class MollieError extends Error {
  override readonly name = 'MollieError';
  readonly code: MollieErrorCode;
  readonly retryable: boolean;
  readonly effect: WriteEffect;
  readonly mollie: MollieProblem | null;
  readonly retryAfterSeconds: number | null;

  constructor(init: MollieErrorInit) {
    super(init.message);
    this.code = init.code;
    this.retryable = init.retryable;
    this.effect = init.effect ?? 'none';
    this.mollie = init.mollie ?? null;
    this.retryAfterSeconds = init.retryAfterSeconds ?? null;
  }

  /** A plain object for results and audit rows: no stack, nothing but what the contract names. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      effect: this.effect,
      ...(this.mollie ? { status: this.mollie.status, title: this.mollie.title, detail: this.mollie.detail, field: this.mollie.field } : {}),
      ...(this.retryAfterSeconds !== null ? { retry_after_seconds: this.retryAfterSeconds } : {}),
    };
  }
}

/** Maps an HTTP error answer from Mollie (status and its JSON problem body) to our error. */
export function errorFromMollieProblem(problem: MollieProblem, retryAfterSeconds?: number): MollieError {
  const { status } = problem;
  const said = problem.field ? `${problem.detail} (field: ${problem.field})` : problem.detail;
  if (status === 404 || status === 410) {
    return new MollieError({ code: 'not_found', message: `Mollie has no such resource: ${said}`, retryable: false, mollie: problem });
  }
  if (status === 429) {
    return new MollieError({
      code: 'rate_limited',
      message: `Mollie is rate limiting this account${retryAfterSeconds !== undefined ? `; try again in ${retryAfterSeconds} s` : '; try again shortly'}.`,
      retryable: true,
      mollie: problem,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    });
  }
  if (status >= 500) {
    return new MollieError({
      code: 'mollie_unavailable',
      message: `Mollie answered ${status} ${problem.title}; it is safe to try again later with the same request.`,
      retryable: true,
      effect: 'unknown',
      mollie: problem,
    });
  }
  if (status === 401) {
    return new MollieError({
      code: 'mollie_rejected',
      message: 'Mollie refused the credential: check MOLLIE_API_KEY or MOLLIE_ACCESS_TOKEN.',
      retryable: false,
      mollie: problem,
    });
  }
  return new MollieError({ code: 'mollie_rejected', message: `Mollie refused the request: ${said}`, retryable: false, mollie: problem });
}

/** A payment id that cannot exist (wrong shape): refused before anything is sent, the same by every implementation. */
const ID_SHAPES = {
  payment: { noun: 'payment', example: 'tr_WDqYK6vllg' },
  refund: { noun: 'refund', example: 're_4qqhO89gsT' },
  paymentLink: { noun: 'payment link', example: 'pl_4Y0eZitmBnQ6IDoMqZQKh' },
} as const;

export function malformedIdError(kind: keyof typeof ID_SHAPES, id: unknown): MollieError {
  const { noun, example } = ID_SHAPES[kind];
  return new MollieError({
    code: 'not_found',
    message: `There is no ${noun} ${JSON.stringify(String(id).slice(0, 80))}: Mollie ${noun} ids look like ${example}.`,
    retryable: false,
  });
}
