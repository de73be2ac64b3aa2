/**
 * Mollie misbehaving, one tool at a time: every fault of the https double against the built server, each case side
 * by side on its own invoice or payment. For each: the error code and retryable flag the agent sees, what Mollie
 * received (one Idempotency-Key per call, reused on every retry, never a second payment or refund), the audit
 * outcome row, the budget reservation (released on a definite failure, kept on an unknown outcome), and the agent's
 * retry afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieApiDouble, type Fault, type MollieApiDouble, type RecordedRequest } from './mollie-api-double.js';
import { createWorkspace, mollieDoubleEnv, spawnServer, type ServerHandle, type Workspace } from './stdio-server.js';
import { openStoreForTest } from './store-under-test.js';

export type FaultTool = 'create_invoice_payment' | 'get_payment_status' | 'refund';

type Expected = 'ok' | { code: string; retryable: boolean; effect: 'none' | 'unknown' };

interface FaultCase {
  name: string;
  fault: Fault;
  /** How many matching requests get the fault (enough to outlast every retry unless the case is about one). */
  times: number;
  write: Expected;
  read: Expected;
}

const unavailable = (effect: 'none' | 'unknown') => ({ code: 'mollie_unavailable', retryable: true, effect });

export const FAULT_CASES: FaultCase[] = [
  { name: '429 with Retry-After, every time', fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } }, times: 20, write: { code: 'rate_limited', retryable: true, effect: 'none' }, read: { code: 'rate_limited', retryable: true, effect: 'none' } },
  { name: '429 with Retry-After, once', fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } }, times: 1, write: 'ok', read: 'ok' },
  ...[500, 502, 503, 504].map((status) => ({ name: `${status}`, fault: { kind: 'status', status } as Fault, times: 20, write: unavailable('unknown'), read: unavailable('none') })),
  { name: 'a timeout (no answer within 10 s)', fault: { kind: 'delay', ms: 12_000 }, times: 20, write: unavailable('unknown'), read: unavailable('none') },
  { name: 'a connection reset before the request is processed', fault: { kind: 'reset-before' }, times: 20, write: unavailable('unknown'), read: unavailable('none') },
  { name: 'a connection reset after the request is processed', fault: { kind: 'reset-after' }, times: 20, write: unavailable('unknown'), read: unavailable('none') },
  { name: 'a slow answer (2 s)', fault: { kind: 'delay', ms: 2_000 }, times: 1, write: 'ok', read: 'ok' },
  { name: 'a body that is not JSON', fault: { kind: 'non-json', status: 200 }, times: 20, write: unavailable('unknown'), read: unavailable('none') },
];

const POLICY = `agent: faulty
rate_limit: { per_minute: 10000 }
tools:
  create_invoice_payment:
    limits:
      EUR: { per_call: "100.00" }
  get_payment_status: {}
  refund:
    limits:
      EUR: { per_call: "100.00" }
`;

/** `kind` picks what create_invoice_payment makes: a payment link (its default) or a checkout. */
export function faultMatrix(tool: FaultTool, kind: 'payment_link' | 'checkout' = 'payment_link'): void {
  let double: MollieApiDouble;
  let workspace: Workspace;
  let server: ServerHandle;

  beforeAll(async () => {
    double = await startMollieApiDouble();
    workspace = createWorkspace({ faulty: POLICY });
    server = await spawnServer({ agent: 'faulty', workspace, env: mollieDoubleEnv(double.url) });
  });

  afterAll(async () => {
    await server.close();
    await double.close();
    workspace.remove();
  });

  const rowsOf = (callId: string) => {
    const db = openStoreForTest(workspace);
    try {
      return {
        audit: db.prepare('SELECT kind, decision, outcome, error_code, idempotency_key FROM audit_log WHERE call_id = ? ORDER BY seq').all(callId) as { kind: string; decision: string | null; outcome: string | null; error_code: string | null; idempotency_key: string | null }[],
        reservation: (db.prepare('SELECT state FROM reservations WHERE call_id = ?').get(callId) as { state: string } | undefined)?.state,
      };
    } finally {
      db.close();
    }
  };

  describe(`${tool}${tool === 'create_invoice_payment' ? ` (${kind})` : ''} when Mollie fails`, () => {
    FAULT_CASES.forEach((testCase, index) => {
      it.concurrent(testCase.name, async () => {
        const expected = tool === 'get_payment_status' ? testCase.read : testCase.write;
        const invoiceId = `FAULT-${tool}-${kind}-${index}`;
        let args: Record<string, unknown>;
        let mine: (request: RecordedRequest) => boolean;
        let removeFault: () => void;
        let paymentId = '';
        if (tool === 'create_invoice_payment') {
          // The description names the invoice (links carry no metadata).
          args = { invoice_id: invoiceId, amount: '10.00', kind };
          const path = kind === 'checkout' ? /^\/v2\/payments$/ : /^\/v2\/payment-links$/;
          mine = (request) => request.method === 'POST' && path.test(request.path) && JSON.stringify(request.body).includes(`"Invoice ${invoiceId}"`);
          removeFault = double.inject({ fault: testCase.fault, method: 'POST', path, bodyIncludes: `"Invoice ${invoiceId}"`, times: testCase.times });
        } else {
          const payment = await double.simulator.createPayment({ amount: { value: '50.00', currency: 'EUR' }, description: `Invoice ${invoiceId}`, redirectUrl: 'https://shop.example.com/thanks', metadata: { invoice_id: invoiceId } }, { idempotencyKey: invoiceId });
          paymentId = payment.id;
          if (tool === 'refund') {
            double.simulator.simulate(payment.id, 'paid');
            args = { payment_id: payment.id, amount: '10.00' };
            mine = (request) => request.method === 'POST' && request.path === `/v2/payments/${payment.id}/refunds`;
            removeFault = double.inject({ fault: testCase.fault, method: 'POST', path: new RegExp(`^/v2/payments/${payment.id}/refunds$`), times: testCase.times });
          } else {
            args = { payment_id: payment.id };
            mine = (request) => request.method === 'GET' && request.path === `/v2/payments/${payment.id}`;
            removeFault = double.inject({ fault: testCase.fault, method: 'GET', path: new RegExp(`^/v2/payments/${payment.id}$`), times: testCase.times });
          }
        }

        const result = await server.call(tool, args);
        removeFault();
        const auditId = String(result.structuredContent.audit_id);
        const { audit, reservation } = rowsOf(auditId);
        const error = result.structuredContent.error as { code: string; retryable: boolean; message: string; retry_after_seconds?: number } | undefined;

        if (expected === 'ok') {
          expect(error).toBeUndefined();
          expect(audit.map((row) => row.outcome ?? row.decision)).toEqual(['allowed', 'ok']);
        } else {
          expect(error).toMatchObject({ code: expected.code, retryable: expected.retryable });
          expect(error!.message).not.toMatch(/test_e2e|Bearer|at .*\.js:\d+/);
          const outcome = expected.effect === 'unknown' ? 'unknown' : 'error';
          expect(audit.map((row) => row.outcome ?? row.decision)).toEqual(['allowed', outcome]);
          expect(audit[1]!.error_code).toBe(expected.code);
          // A definite failure gives the budget back; an unknown one keeps it until someone learns the truth.
          if (tool !== 'get_payment_status') expect(reservation).toBe(outcome === 'unknown' ? 'unknown' : 'released');
        }

        const sent = double.requests.filter(mine);
        expect(sent.length).toBeGreaterThanOrEqual(1);
        if (tool !== 'get_payment_status') {
          // One key per call, the same on every attempt, and the one the decision row recorded before Mollie was asked.
          const keys = new Set(sent.map((request) => request.headers['idempotency-key']));
          expect(keys.size).toBe(1);
          expect([...keys][0]).toBe(audit[0]!.idempotency_key);
        }

        // The agent tries again once Mollie is well: still never a second link, payment or refund. After an unknown
        // outcome the retry first repeats the lost creation with its own key, and hands out what Mollie made.
        const retry = await server.call(tool, args);
        if (tool === 'create_invoice_payment') {
          expect(retry.isError).toBe(false);
          const made =
            kind === 'checkout'
              ? (await double.simulator.listRecentPayments(250)).filter((payment) => payment.metadata?.invoice_id === invoiceId)
              : (await double.simulator.listRecentPaymentLinks(250)).filter((link) => link.description === `Invoice ${invoiceId}`);
          expect(made).toHaveLength(1);
          expect(retry.structuredContent[kind === 'checkout' ? 'payment_id' : 'payment_link_id']).toBe(made[0]!.id);
          const keys = new Set(double.requests.filter(mine).map((request) => request.headers['idempotency-key']));
          expect(keys.size).toBe(1);
        } else if (tool === 'refund') {
          const refunds = await double.simulator.listRefunds(paymentId);
          if (!retry.isError) {
            // The first attempt definitely failed, so the retry is the one refund.
            expect(expected === 'ok' ? 'ok' : expected.effect).not.toBe('unknown');
            expect(refunds).toHaveLength(1);
          } else {
            // After an unknown outcome the guard refuses rather than risk a second refund: it names the refund if
            // Mollie has it, or says the outcome is unknown and to check first.
            const refusal = retry.structuredContent.error as { code: string; reason: string; message: string };
            expect(refusal).toMatchObject({ code: 'conflict', reason: 'duplicate_call' });
            expect(refunds.length).toBeLessThanOrEqual(1);
            expect(refusal.message).toContain(refunds.length === 1 ? refunds[0]!.id : 'outcome at Mollie is unknown');
          }
        } else {
          expect(retry.isError).toBe(false);
        }
      });
    });
  });
}
