import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CredentialError } from '../../src/mollie/credentials.js';
import { openMolliePort } from '../../src/mollie/open-port.js';
import { REDACTED_PATHS } from '../../src/log.js';
import { startMollieApiDouble, trustTestCertificates } from '../support/mollie-api-double.js';
import { invoicePayment } from './port-contract.js';

trustTestCertificates();

const KEY = 'test_logSuiteKeyMustNotAppear0123456';

function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, logger: pino({ level: 'debug', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream) };
}

describe('choosing the Mollie port', () => {
  it('without a credential or --simulator, refuses and says what to set', () => {
    expect(() => openMolliePort({ env: {} })).toThrow(CredentialError);
    expect(() => openMolliePort({ env: {} })).toThrow(/MOLLIE_API_KEY.*--simulator/);
  });

  it('uses the simulator for --simulator or MOLLIE_MCP_SIMULATOR=1, even with a key set', () => {
    expect(openMolliePort({ env: {}, simulator: true }).kind).toBe('simulator');
    expect(openMolliePort({ env: { MOLLIE_MCP_SIMULATOR: '1', MOLLIE_API_KEY: KEY } }).kind).toBe('simulator');
  });

  it('refuses a live key without the opt-in before anything is sent', () => {
    expect(() => openMolliePort({ env: { MOLLIE_API_KEY: 'live_aLiveKey0123456789abcdefghij' } })).toThrow(/MOLLIE_MCP_ALLOW_LIVE=1/);
  });

  it('logs retries and the mode, never the key', async () => {
    const double = await startMollieApiDouble();
    try {
      const { lines, logger } = capturingLogger();
      const port = openMolliePort({
        env: { MOLLIE_API_KEY: KEY, MOLLIE_API_ENDPOINT: double.url },
        logger,
        adapterOptions: { retryPolicy: { maxRetries: 3, baseDelayMs: 10, maxDelayMs: 50, retryAfterCeilingMs: 1_000 } },
      });
      expect(port).toMatchObject({ kind: 'mollie', mode: 'test' });
      double.inject({ fault: { kind: 'status', status: 429, headers: { 'retry-after': '0' } } });
      double.inject({ fault: { kind: 'reset-before' } });
      await port.createPayment(invoicePayment(), { idempotencyKey: 'k-log' });
      const log = lines.join('');
      expect(log).toMatch(/"msg":"Using Mollie"/);
      expect(log.match(/Mollie call failed; retrying/g)).toHaveLength(2);
      expect(log).toContain('"code":"rate_limited"');
      expect(log).toContain('"network_error":"ECONNRESET"');
      expect(log).not.toContain(KEY);
      expect(log).not.toMatch(/Bearer/);
    } finally {
      await double.close();
    }
  });
});
