import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkAmountForAnyCurrency,
  currencyDecimals,
  formatMinorUnits,
  MAX_MAJOR_UNITS,
  maxMinorUnits,
  MOLLIE_CURRENCIES,
  MoneyError,
  parseAmount,
  toAmount,
} from '../../src/mollie/money.js';

const currencies = Object.keys(MOLLIE_CURRENCIES);
const anyCurrency = fc.constantFrom(...currencies);
const twoDecimalCurrency = fc.constantFrom(...currencies.filter((code) => MOLLIE_CURRENCIES[code] === 2));
/** A currency and a valid positive amount in its minor units. */
const currencyAndMinor = anyCurrency.chain((currency) => fc.tuple(fc.constant(currency), fc.integer({ min: 1, max: maxMinorUnits(currency) })));

function refusal(value: unknown, currency = 'EUR'): string {
  try {
    parseAmount(value, currency);
  } catch (error) {
    expect(error).toBeInstanceOf(MoneyError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(value)} ${currency} to be refused`);
}

describe('money: decimal strings and integer minor units', () => {
  it('knows every Mollie currency, JPY and ISK without decimals and the rest with two', () => {
    expect(currencyDecimals('JPY')).toBe(0);
    expect(currencyDecimals('ISK')).toBe(0);
    for (const code of currencies.filter((code) => code !== 'JPY' && code !== 'ISK')) expect(currencyDecimals(code)).toBe(2);
    expect(currencies).toHaveLength(27);
  });

  it('reads the examples a person writes', () => {
    expect(parseAmount('120.00', 'EUR')).toBe(12000);
    expect(parseAmount('120.5', 'EUR')).toBe(12050);
    expect(parseAmount('120', 'EUR')).toBe(12000);
    expect(parseAmount('0.01', 'EUR')).toBe(1);
    expect(parseAmount('1000', 'JPY')).toBe(1000);
    expect(parseAmount('0.00', 'EUR', { allowZero: true })).toBe(0);
    expect(formatMinorUnits(12050, 'EUR')).toBe('120.50');
    expect(formatMinorUnits(5, 'EUR')).toBe('0.05');
    expect(formatMinorUnits(1000, 'JPY')).toBe('1000');
    expect(toAmount(1, 'USD')).toEqual({ value: '0.01', currency: 'USD' });
  });

  it('round-trips every amount: format then parse gives the same minor units', () => {
    fc.assert(
      fc.property(currencyAndMinor, ([currency, minor]) => {
        const text = formatMinorUnits(minor, currency);
        expect(text).toMatch(MOLLIE_CURRENCIES[currency] === 0 ? /^[1-9][0-9]*$/ : /^(0|[1-9][0-9]*)\.[0-9]{2}$/);
        expect(parseAmount(text, currency)).toBe(minor);
      }),
      { numRuns: 2_000 },
    );
  });

  it('round-trips shortened decimals ("120.5") to the canonical form ("120.50")', () => {
    fc.assert(
      fc.property(twoDecimalCurrency, fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 0, max: 9 }), (currency, whole, tenth) => {
        fc.pre(whole > 0 || tenth > 0);
        const minor = parseAmount(`${whole}.${tenth}`, currency);
        expect(minor).toBe(whole * 100 + tenth * 10);
        expect(formatMinorUnits(minor, currency)).toBe(`${whole}.${tenth}0`);
      }),
    );
  });

  it('refuses numbers, whatever their value: floats cannot carry money', () => {
    fc.assert(
      fc.property(fc.oneof(fc.double(), fc.integer()), (value) => {
        expect(refusal(value)).toMatch(/string/);
      }),
    );
    expect(refusal(12.5)).toMatch(/not the number 12.5/);
  });

  it('refuses signs, exponents, spaces, commas and leading zeros, saying which', () => {
    fc.assert(
      fc.property(currencyAndMinor, fc.constantFrom('+', '-'), ([currency, minor], sign) => {
        expect(refusal(`${sign}${formatMinorUnits(minor, currency)}`, currency)).toMatch(/sign/);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -5, max: 5 }), (digit, exponent) => {
        expect(refusal(`${digit}e${exponent}`)).toMatch(/exponent/);
        expect(refusal(`${digit}E${exponent}`)).toMatch(/exponent/);
      }),
    );
    fc.assert(
      fc.property(currencyAndMinor, fc.constantFrom(' ', '\t', '\n', '\u00a0'), fc.boolean(), ([currency, minor], space, before) => {
        const text = formatMinorUnits(minor, currency);
        expect(refusal(before ? `${space}${text}` : `${text}${space}`, currency)).toMatch(/spaces/);
      }),
    );
    expect(refusal('1,50')).toMatch(/comma/);
    expect(refusal('1.250,00')).toMatch(/comma/);
    expect(refusal('012.50')).toMatch(/leading zeros/);
    expect(refusal('.5')).toMatch(/not a decimal number/);
    expect(refusal('5.')).toMatch(/not a decimal number/);
    expect(refusal('0x10')).toMatch(/not a decimal number/);
    expect(refusal('Infinity')).toMatch(/not a decimal number/);
    expect(refusal('NaN')).toMatch(/not a decimal number/);
    expect(refusal('')).toMatch(/empty/);
    expect(refusal(null)).toMatch(/null/);
  });

  it('refuses more decimals than the currency has, naming the currency and its decimals', () => {
    fc.assert(
      fc.property(twoDecimalCurrency, fc.integer({ min: 0, max: 10_000 }), fc.stringMatching(/^[0-9]{3,6}$/), (currency, whole, decimals) => {
        expect(refusal(`${whole}.${decimals}`, currency)).toContain(`${currency} has 2`);
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom('JPY', 'ISK'), fc.integer({ min: 0, max: 10_000 }), fc.stringMatching(/^[0-9]{1,3}$/), (currency, whole, decimals) => {
        expect(refusal(`${whole}.${decimals}`, currency)).toContain(`${currency} has none`);
      }),
    );
  });

  it('refuses unknown currency codes, listing the ones Mollie takes', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 5 }), (code) => {
        fc.pre(!Object.hasOwn(MOLLIE_CURRENCIES, code));
        expect(refusal('10.00', code)).toMatch(/Unknown currency.*EUR/);
      }),
    );
    expect(refusal('10.00', 'eur')).toMatch(/Unknown currency/);
    expect(refusal('10.00', 'BTC')).toMatch(/Unknown currency/);
    expect(refusal('10.00', '__proto__')).toMatch(/Unknown currency/);
  });

  it('refuses zero where a positive amount is required', () => {
    for (const zero of ['0', '0.0', '0.00']) expect(refusal(zero)).toMatch(/zero/);
    expect(refusal('0', 'JPY')).toMatch(/zero/);
  });

  it('refuses amounts above the maximum, and accepts the maximum itself', () => {
    expect(parseAmount(`${MAX_MAJOR_UNITS}.00`, 'EUR')).toBe(maxMinorUnits('EUR'));
    expect(refusal(`${MAX_MAJOR_UNITS}.01`)).toMatch(/above the largest amount/);
    expect(refusal('99999999999999999999')).toMatch(/above the largest amount/);
    fc.assert(
      fc.property(anyCurrency, fc.bigInt({ min: BigInt(MAX_MAJOR_UNITS) + 1n, max: 10n ** 30n }), (currency, major) => {
        expect(refusal(String(major), currency)).toMatch(/above the largest amount|too long/);
      }),
    );
    expect(Number.isSafeInteger(maxMinorUnits('EUR'))).toBe(true);
  });

  it('only formats whole, non-negative minor units', () => {
    expect(() => formatMinorUnits(1.5, 'EUR')).toThrow(MoneyError);
    expect(() => formatMinorUnits(-1, 'EUR')).toThrow(MoneyError);
    expect(() => formatMinorUnits(Number.MAX_SAFE_INTEGER + 1, 'EUR')).toThrow(MoneyError);
  });
});

describe('checkAmountForAnyCurrency: an amount before its currency is known', () => {
  it('refuses what is wrong in every currency, and says so without naming a currency', () => {
    expect(() => checkAmountForAnyCurrency('10.001')).toThrow('has 3 decimals, but no currency Mollie accepts has more than 2');
    expect(() => checkAmountForAnyCurrency('0.00')).toThrow(/is zero/);
    expect(() => checkAmountForAnyCurrency(12.5)).toThrow(/not the number 12.5/);
    expect(() => checkAmountForAnyCurrency('10000000000')).toThrow(/above the largest amount accepted/);
  });

  it('lets through what some currency accepts, for parseAmount to judge once the currency is known', () => {
    expect(() => checkAmountForAnyCurrency('10.50')).not.toThrow();
    expect(() => parseAmount('10.50', 'JPY')).toThrow(/JPY has none/);
  });
});
