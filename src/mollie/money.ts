/**
 * Money as Mollie speaks it: a decimal string with exactly the currency's decimals ("10.00", JPY "1000").
 * Inside this server every amount is an integer count of minor units; floats never carry money.
 */

/** Currencies Mollie accepts for payments, with their decimal places (docs.mollie.com, "Multicurrency"). */
export const MOLLIE_CURRENCIES: Readonly<Record<string, 0 | 2>> = Object.freeze({
  AED: 2, AUD: 2, BRL: 2, CAD: 2, CHF: 2, CZK: 2, DKK: 2, EUR: 2, GBP: 2, HKD: 2, HUF: 2, ILS: 2,
  ISK: 0, JPY: 0, MXN: 2, MYR: 2, NOK: 2, NZD: 2, PHP: 2, PLN: 2, RON: 2, SEK: 2, SGD: 2, THB: 2,
  TWD: 2, USD: 2, ZAR: 2,
});

/**
 * The largest amount we accept, in major units of any currency. Mollie's own limits are per payment method and
 * far lower (and rejected by Mollie with a 422 on `amount`); this ceiling keeps every minor-unit count a safe integer.
 */
export const MAX_MAJOR_UNITS = 1_000_000_000;

/** An amount as Mollie's API and this server's tool results carry it. */
export interface Amount {
  value: string;
  currency: string;
}

export class MoneyError extends Error {
  override readonly name = 'MoneyError';
}

export function isMollieCurrency(currency: unknown): currency is string {
  return typeof currency === 'string' && Object.hasOwn(MOLLIE_CURRENCIES, currency);
}

export function currencyDecimals(currency: string): 0 | 2 {
  if (!isMollieCurrency(currency)) {
    throw new MoneyError(
      `Unknown currency ${JSON.stringify(currency)}: use an ISO 4217 code Mollie accepts (${Object.keys(MOLLIE_CURRENCIES).join(', ')}).`,
    );
  }
  return MOLLIE_CURRENCIES[currency]!;
}

export function maxMinorUnits(currency: string): number {
  return MAX_MAJOR_UNITS * 10 ** currencyDecimals(currency);
}

export interface ParseOptions {
  /** Accept "0.00" (for an amount already paid, say). Default: amounts must be positive. */
  allowZero?: boolean;
}

const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/**
 * Parses a decimal string into minor units of `currency`, refusing anything that is not plainly an amount.
 * "120.5" EUR is 12050; "1000" JPY is 1000; "0.001" EUR, 12.5 (a number), "1e3", "-1", " 1" are refused.
 */
export function parseAmount(value: unknown, currency: string, options: ParseOptions = {}): number {
  return parseDecimal(value, currencyDecimals(currency), currency, options);
}

/** The most decimals any currency Mollie accepts has. */
const MOST_DECIMALS = 2;

/**
 * Checks an amount whose currency is not known yet (a refund's, before its payment is read): everything that would
 * be wrong in every currency. parseAmount with the real currency follows once it is known.
 */
export function checkAmountForAnyCurrency(value: unknown): void {
  parseDecimal(value, MOST_DECIMALS, null, {});
}

/** `currency` null: not known yet, so the limits of the most permissive currency apply. */
function parseDecimal(value: unknown, decimals: number, currency: string | null, options: ParseOptions): number {
  if (typeof value === 'number' || typeof value === 'bigint') {
    throw new MoneyError(
      `Give the amount as a string such as "12.50", not the number ${String(value)}: numbers cannot carry money exactly.`,
    );
  }
  if (typeof value !== 'string') {
    throw new MoneyError(`The amount must be a decimal string such as "12.50"; got ${value === null ? 'null' : typeof value}.`);
  }
  if (value.length === 0) throw new MoneyError('The amount is empty: write a decimal string such as "12.50".');
  if (value.length > 32) throw new MoneyError('The amount is too long to be an amount of money.');
  if (/\s/.test(value)) throw new MoneyError(`The amount ${JSON.stringify(value)} contains spaces: write it as "12.50".`);
  if (/^[+-]/.test(value)) {
    throw new MoneyError(`The amount ${JSON.stringify(value)} has a sign: amounts are always positive, without + or -.`);
  }
  if (/[eE]/.test(value)) {
    throw new MoneyError(`The amount ${JSON.stringify(value)} uses exponent notation: write the digits out, as in "1000.00".`);
  }
  if (value.includes(',')) {
    throw new MoneyError(`The amount ${JSON.stringify(value)} contains a comma: use a point as the decimal separator and no thousands separator, as in "1250.50".`);
  }
  const match = DECIMAL.exec(value);
  if (!match) {
    if (/^0[0-9]/.test(value)) throw new MoneyError(`The amount ${JSON.stringify(value)} has leading zeros: write "12.50", not "012.50".`);
    throw new MoneyError(`The amount ${JSON.stringify(value)} is not a decimal number: write digits, optionally a point and up to ${decimals} decimals, as in "${decimals === 0 ? '1000' : '12.50'}".`);
  }
  const whole = match[1]!;
  const fraction = match[2] ?? '';
  if (fraction.length > decimals) {
    throw new MoneyError(
      decimals === 0
        ? `The amount ${JSON.stringify(value)} has decimals, but ${currency} has none: write a whole number such as "1000".`
        : currency === null
          ? `The amount ${JSON.stringify(value)} has ${fraction.length} decimals, but no currency Mollie accepts has more than ${decimals}: write it as in "12.50".`
          : `The amount ${JSON.stringify(value)} has ${fraction.length} decimals, but ${currency} has ${decimals}: write it as in "12.50".`,
    );
  }
  if (whole.length > String(MAX_MAJOR_UNITS).length) throw tooLarge(value, currency);
  const minor = Number(whole) * 10 ** decimals + Number(fraction.padEnd(decimals, '0') || '0');
  if (currency !== null && minor > maxMinorUnits(currency)) throw tooLarge(value, currency);
  if (minor === 0 && !options.allowZero) {
    throw new MoneyError(`The amount ${JSON.stringify(value)} is zero: it must be more than zero.`);
  }
  return minor;
}

function tooLarge(value: string, currency: string | null): MoneyError {
  if (currency === null) return new MoneyError(`The amount ${JSON.stringify(value)} is above the largest amount accepted (${MAX_MAJOR_UNITS} in any currency).`);
  return new MoneyError(
    `The amount ${JSON.stringify(value)} ${currency} is above the largest amount accepted (${formatMinorUnits(maxMinorUnits(currency), currency)}).`,
  );
}

/** Formats minor units the way Mollie expects: exactly the currency's decimals, a point, no separators. */
export function formatMinorUnits(minor: number, currency: string): string {
  const decimals = currencyDecimals(currency);
  if (!Number.isSafeInteger(minor) || minor < 0) {
    throw new MoneyError(`Cannot format ${String(minor)} minor units: expected a non-negative whole number.`);
  }
  if (decimals === 0) return String(minor);
  const digits = String(minor).padStart(decimals + 1, '0');
  return `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

export function toAmount(minor: number, currency: string): Amount {
  return { value: formatMinorUnits(minor, currency), currency };
}

/** Minor units of an amount that may be zero (Mollie's amountRefunded, for instance). */
export function amountToMinorUnits(amount: Amount): number {
  return parseAmount(amount.value, amount.currency, { allowZero: true });
}

/** "€120.50"-style text for people; never parsed back. */
export function describeAmount(amount: Amount): string {
  return `${amount.value} ${amount.currency}`;
}
