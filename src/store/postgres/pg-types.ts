/**
 * How values come back from PostgreSQL: BIGINT (seq, amounts, counts) and NUMERIC (sums) as JavaScript numbers, as
 * SQLite gives them. Every such value this server writes or sums is a whole number far below 2^53; one that is not
 * is refused rather than rounded.
 */
import pg from 'pg';

function wholeNumber(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new Error(`A database value of ${value} is not a whole number this server reads exactly.`);
  return number;
}

export const PG_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return wholeNumber;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};
