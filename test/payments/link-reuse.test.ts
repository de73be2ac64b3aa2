/**
 * Days pass, on both clocks: the server's (injected into the engine) and Mollie's (the https double's). A payable link
 * is handed back days later from this server's own records, though Mollie forgot its Idempotency-Key after 24 hours;
 * past its expiry the link reads expired and the next call makes a new one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.js';
import { openEngine, type Engine } from '../../src/engine.js';
import { createMollieApiPort } from '../../src/mollie/mollie-api-port.js';
import { CLERK_POLICY } from '../support/link-scenarios.js';
import { startMollieApiDouble, trustTestCertificates, type MollieApiDouble } from '../support/mollie-api-double.js';

trustTestCertificates();

const DAY = 24 * 3_600_000;
const ORIGIN = { caller: { agent: 'clerk', token: null }, transport: 'in-process' as const, clientName: 'test', confirm: null };

let now = Date.parse('2026-12-01T09:00:00Z');
let double: MollieApiDouble;
let engine: Engine;
let directory: string;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'mim-link-reuse-'));
  writeFileSync(join(directory, 'clerk.yaml'), CLERK_POLICY());
  double = await startMollieApiDouble({ now: () => new Date(now) });
  const mollie = createMollieApiPort({ kind: 'api_key', apiKey: 'test_linkReuseSuite0123456789abcdef', mode: 'test', apiEndpoint: double.url });
  const config = readConfig({ MOLLIE_MCP_POLICIES: directory, MOLLIE_MCP_DB: join(directory, 'audit.db'), MOLLIE_MCP_REDIRECT_URL: 'https://shop.example.com/thanks' });
  engine = openEngine(config, { logger: pino({ level: 'silent' }), env: {}, mollie, clock: () => new Date(now) });
});

afterAll(async () => {
  engine.close();
  await double.close();
  rmSync(directory, { recursive: true, force: true });
});

const call = (name: string, args: Record<string, unknown>) => engine.gate.call(ORIGIN, name, args);
const posts = () => double.requests.filter((request) => request.method === 'POST').length;

describe('a payment link over the days', () => {
  it('is reused three days later, though Mollie no longer holds its key; expires after 30 days; then a new one is made', async () => {
    const first = await call('create_invoice_payment', { invoice_id: '2026-114', amount: '450.00' });
    expect(first.structuredContent).toMatchObject({ status: 'open', expires_at: '2026-12-31T09:00:00.000Z', reused: false });
    const linkId = first.structuredContent.payment_link_id;

    now += 3 * DAY;
    const before = posts();
    const later = await call('create_invoice_payment', { invoice_id: '2026-114', amount: '450.00' });
    expect(later.structuredContent).toMatchObject({ payment_link_id: linkId, reused: true });
    expect(posts()).toBe(before);
    const status = await call('get_payment_status', { invoice_id: '2026-114' });
    expect(status.structuredContent.status_label).toBe('Open until 31 Dec 2026, 09:00 UTC; not paid yet');

    now += 28 * DAY;
    const expired = await call('get_payment_status', { payment_link_id: String(linkId) });
    expect(expired.structuredContent).toMatchObject({ status: 'expired', is_final: true, checkout_url: null, status_label: 'Expired on 31 Dec 2026, 09:00 UTC without being paid' });
    const fresh = await call('create_invoice_payment', { invoice_id: '2026-114', amount: '450.00' });
    expect(fresh.structuredContent).toMatchObject({ reused: false, replaced: [], status: 'open' });
    expect(fresh.structuredContent.payment_link_id).not.toBe(linkId);
    const keys = double.requests.filter((request) => request.method === 'POST').map((request) => request.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(2);
  });
});
