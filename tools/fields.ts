/** The argument and result fields several tools share, each with the message a model needs to correct itself. */
import { z } from 'zod';
import { isMollieCurrency, MOLLIE_CURRENCIES, MoneyError, parseAmount } from '../src/mollie/money.js';
import { PAYMENT_STATUSES, REFUND_STATUSES } from '../src/mollie/port.js';

export const invoiceId = z
  .string({ error: 'invoice_id must be a string such as "2026-114"' })
  .min(1, 'invoice_id must not be empty')
  .max(64, 'invoice_id is at most 64 characters')
  .regex(/^[A-Za-z0-9._/-]+$/, 'invoice_id may contain only letters, digits, ".", "_", "/" and "-"')
  .describe('Your invoice number, e.g. "2026-114" (1-64 letters, digits, ".", "_", "/", "-").');

export const paymentId = z
  .string({ error: 'payment_id must be a string such as "tr_WDqYK6vllg"' })
  .regex(/^tr_[A-Za-z0-9]{1,64}$/, 'payment_id must be a Mollie payment id: "tr_" followed by letters and digits')
  .describe('The Mollie payment id, "tr_..."');

export const currency = z
  .string({ error: 'currency must be a three-letter ISO 4217 code such as "EUR"' })
  .refine(isMollieCurrency, { message: `currency must be one Mollie accepts: ${Object.keys(MOLLIE_CURRENCIES).join(', ')}` })
  .describe('ISO 4217 code, e.g. EUR (the default). JPY and ISK have no decimals.');

/** An amount's shape only; whether its decimals fit is checked against the currency it is paired with. */
export const decimalAmount = (name: string, example = '120.00') =>
  z
    .string({ error: `${name} must be a decimal string such as "${example}", not a number` })
    .max(32, `${name} is too long to be an amount`)
    .describe(`A decimal string such as "${example}" (a point, at most the currency's decimals; never a number).`);

export const description = z
  .string({ error: 'description must be a string' })
  .min(1, 'description must not be empty')
  .max(255, 'description is at most 255 characters (Mollie shows it to the customer)')
  .refine((text) => !/[\u0000-\u001f\u007f]/.test(text), 'description must not contain control characters or line breaks')
  // Found by fuzzing: Mollie refuses a blank description with a 422, so it is refused here, before any request.
  .refine((text) => text.trim() !== '', 'description must not be blank');

/** Checks `value` as an amount of `currency`, reporting the problem on `path` in the caller's zod context. */
export function checkAmount(
  context: z.RefinementCtx,
  path: string,
  value: string | undefined,
  currencyCode: string,
  options: { allowZero?: boolean } = {},
): number | null {
  if (value === undefined || !isMollieCurrency(currencyCode)) return null;
  try {
    return parseAmount(value, currencyCode, options);
  } catch (error) {
    if (!(error instanceof MoneyError)) throw error;
    context.addIssue({ code: 'custom', path: [path], message: `${path}: ${error.message}` });
    return null;
  }
}

export const amountOut = z.strictObject({ value: z.string(), currency: z.string() }).describe('Mollie\'s format: a string with exactly the currency\'s decimals.');

export const paymentLinkId = z
  .string({ error: 'payment_link_id must be a string such as "pl_4Y0eZitmBnQ6IDoMqZQKh"' })
  .regex(/^pl_[A-Za-z0-9]{1,64}$/, 'payment_link_id must be a Mollie payment link id: "pl_" followed by letters and digits')
  .describe('The Mollie payment link id, "pl_..."');

export const paymentKind = z.enum(['payment_link', 'checkout'], {
  error: 'kind must be "payment_link" (a pay link that stays payable for days) or "checkout" (a checkout that expires in about 15 minutes)',
});

function isCalendarDate(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const EXPIRY = /^(\d{4})-(\d{2})-(\d{2})(?:T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,9})?)?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d))?$/;

/** A date ("2027-01-31") or a date-time with an offset; whether it is far enough ahead is checked against the clock. */
export const expiryDate = z
  .string({ error: 'expires_at must be a string such as "2027-01-31"' })
  .max(40, 'expires_at must be a date such as "2027-01-31" or a date-time with offset such as "2027-01-31T17:00:00+01:00"')
  .refine((text) => {
    const match = EXPIRY.exec(text);
    return match !== null && isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3])) && (match[4] === undefined || match[7] !== undefined);
  }, 'expires_at must be a date such as "2027-01-31" (the end of that day, UTC) or a date-time with offset such as "2027-01-31T17:00:00+01:00"');

export const paymentStatus = z.enum(PAYMENT_STATUSES);
export const refundStatus = z.enum(REFUND_STATUSES);
export const isoTime = z.string().describe('ISO 8601, UTC');
