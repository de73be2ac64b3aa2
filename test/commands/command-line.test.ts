import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../src/commands/command-line.js';

describe('shellQuote', () => {
  it.each(['/srv/mollie/audit.db', "/tmp/we'ird $(touch PWNED) `id`;/x.db", 'a b', '%PATH%', '--db', ''])('reads back %j unchanged in a POSIX shell', (word) => {
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(word)}`], { encoding: 'utf8' })).toBe(word);
  });
});
