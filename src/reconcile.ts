/**
 * Reconciliation, at start and then while serving:
 * - calls whose decision row was written by a process that died (SIGKILL, power cut) before their outcome: each tool
 *   asks Mollie whether the call took effect; the answer becomes the call's outcome row and settles its budget
 *   reservation (spent if it happened, released if not, kept if Mollie cannot say). Calls that move no money are found
 *   by their open_reads row instead, and only get their outcome: nothing changed;
 * - calls whose outcome was unknown (a timeout, a 5xx): asked about again with backoff; what Mollie says is written as
 *   a `settled` event of the call and settles its reservation. A call keeps one outcome row, always.
 * Only calls older than the Mollie deadline and a margin are looked at: a write still on its way to Mollie has landed
 * (or failed) by then, so "Mollie has no such refund" means it did not happen.
 */
import type { Logger } from 'pino';
import type { AuditLog, AuditRow } from './audit/audit-log.js';
import { immediateWhenFree, type SqliteDatabase } from './database.js';
import { normalizeFailure } from './tool-error.js';
import type { MolliePort } from './mollie/port.js';
import type { InvoiceLocks } from './payments/invoice-locks.js';
import type { PaymentRecords } from './payments/payment-records.js';
import { OpenReads } from './open-reads.js';
import { instanceAlive } from './server-instances.js';
import type { InterruptedCall, ToolDefinition } from './tool-definition.js';

/** Calls written by a version without instance ids count as interrupted once they are this old. */
const UNOWNED_AFTER_MS = 10 * 60 * 1000;
/** The Mollie port's deadline for one call (10 s) and a margin: how old a call must be before it is settled for it. */
export const SETTLE_AFTER_MS = 30_000;

export interface ReconcileDeps {
  db: SqliteDatabase;
  audit: AuditLog;
  mollie: MolliePort;
  payments: PaymentRecords;
  locks: InvoiceLocks;
  tools: readonly ToolDefinition[];
  logger: Logger;
  /** This process: its own calls are never reconciled. */
  instanceId: string;
  clock?: () => Date;
}

export interface ReconcileSummary {
  interrupted: number;
  happened: number;
  didNotHappen: number;
  unknown: number;
  /** Interrupted calls too recent to settle yet: the next pass comes back to them. */
  waiting: number;
}

interface OpenCall {
  call_id: string;
  instance_id: string | null;
  opened_at: string;
  /** How it is closed: its reservation settled, or its open_reads row removed. */
  via: 'reservation' | 'open_read';
}

export async function reconcileInterrupted(deps: ReconcileDeps): Promise<ReconcileSummary> {
  const clock = deps.clock ?? (() => new Date());
  const now = clock();
  const tools = new Map(deps.tools.map((tool) => [tool.name, tool]));
  const openReads = new OpenReads(deps.db);
  const open: OpenCall[] = [
    ...deps.db
      .prepare<[], Omit<OpenCall, 'via'>>("SELECT call_id, instance_id, reserved_at AS opened_at FROM reservations WHERE state = 'reserved' ORDER BY reserved_at")
      .all()
      .map((call) => ({ ...call, via: 'reservation' as const })),
    ...openReads.all().map((call) => ({ ...call, via: 'open_read' as const })),
  ];
  const liveness = new Map<string, boolean>();
  const summary: ReconcileSummary = { interrupted: 0, happened: 0, didNotHappen: 0, unknown: 0, waiting: 0 };
  const orphaned = open.filter((call) => {
    if (call.instance_id === deps.instanceId) return false;
    if (call.instance_id === null) return now.getTime() - Date.parse(call.opened_at) > UNOWNED_AFTER_MS;
    if (!liveness.has(call.instance_id)) liveness.set(call.instance_id, instanceAlive(deps.db, call.instance_id, now));
    return !liveness.get(call.instance_id);
  });
  const interrupted = orphaned.filter((call) => now.getTime() - Date.parse(call.opened_at) >= SETTLE_AFTER_MS);
  summary.waiting = orphaned.length - interrupted.length;
  if (interrupted.length === 0) return summary;

  const decisionOf = deps.db.prepare<[string], AuditRow>("SELECT * FROM audit_log WHERE call_id = ? AND kind = 'decision' LIMIT 1");
  const hasOutcome = deps.db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM audit_log WHERE call_id = ? AND kind = 'outcome'");
  const stillReserved = deps.db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM reservations WHERE call_id = ? AND state = 'reserved'");
  const settle = deps.db.prepare<[string, string]>("UPDATE reservations SET state = ? WHERE call_id = ? AND state = 'reserved'");

  for (const call of interrupted) {
    const decision = decisionOf.get(call.call_id);
    if (!decision) {
      if (call.via === 'open_read') openReads.close(call.call_id);
      continue;
    }
    const tool = decision.tool === null ? undefined : tools.get(decision.tool);
    const base = { call_id: decision.call_id, agent: decision.agent, transport: decision.transport, client_name: decision.client_name, tool: decision.tool };
    let outcome: 'ok' | 'error' | 'unknown';
    let fields: Partial<AuditRow>;
    try {
      if (!tool?.reconcile) {
        outcome = 'error';
        fields = { error_code: 'interrupted', error_message: 'The server stopped before this call finished; it only reads, so nothing changed.' };
      } else {
        const found = await tool.reconcile(interruptedCall(decision), { mollie: deps.mollie, payments: deps.payments, locks: deps.locks, clock });
        outcome = found.happened ? 'ok' : 'error';
        fields = found.happened
          ? { action: found.done, payment_id: found.paymentId, refund_id: found.refundId, invoice_id: decision.invoice_id }
          : { error_code: 'interrupted', error_message: `The server stopped before Mollie answered; ${found.done}.` };
      }
    } catch (error) {
      const failure = normalizeFailure(error);
      outcome = 'unknown';
      fields = { error_code: failure.error.code, error_message: `The server stopped before Mollie answered, and Mollie could not be asked at restart (${failure.error.message}); whether it took effect is unknown.` };
    }
    const written = await immediateWhenFree(deps.db, () => {
      // Another process starting at the same moment may have settled it already.
      if ((hasOutcome.get(decision.call_id)?.n ?? 0) > 0) {
        if (call.via === 'open_read') openReads.close(decision.call_id);
        return false;
      }
      if (call.via === 'open_read') {
        if (!openReads.close(decision.call_id)) return false;
      } else {
        if ((stillReserved.get(decision.call_id)?.n ?? 0) === 0) return false;
        settle.run(outcome === 'ok' ? 'spent' : outcome === 'unknown' ? 'unknown' : 'released', decision.call_id);
      }
      deps.audit.append({ ...base, kind: 'outcome', outcome, duration_ms: null, ...fields });
      return true;
    });
    if (!written) continue;
    summary.interrupted += 1;
    if (outcome === 'ok') summary.happened += 1;
    else if (outcome === 'unknown') summary.unknown += 1;
    else summary.didNotHappen += 1;
  }
  if (summary.interrupted > 0) {
    const { waiting: _waiting, ...counts } = summary;
    await deps.audit.appendWhenFree({
      call_id: `reconcile-${now.toISOString()}-${deps.instanceId}`,
      kind: 'event',
      agent: 'server',
      reason: 'reconciled',
      action: 'reconcile interrupted calls at start',
      reason_message: `${summary.interrupted} call(s) interrupted by a server that stopped: ${summary.happened} took effect at Mollie, ${summary.didNotHappen} did not, ${summary.unknown} unknown.`,
      arguments: JSON.stringify(counts),
    });
    deps.logger.warn(counts, 'Reconciled calls interrupted by a server that stopped before their outcome');
  }
  return summary;
}

/** When a call whose outcome is unknown may be asked about again, per call, in this process. */
export type Backoff = Map<string, { attempts: number; nextAt: number }>;

const FIRST_RETRY_MS = 30_000;
const LONGEST_WAIT_MS = 60 * 60 * 1000;
/** Past this many failed attempts (about a day) the call is left for a person: its reservation keeps counting. */
const MAX_ATTEMPTS = 30;

export interface SettleSummary {
  settled: number;
  happened: number;
  didNotHappen: number;
  /** Still unknown: Mollie could not be asked, or the call is too recent. */
  pending: number;
}

/**
 * Calls whose outcome at Mollie was unknown, asked about again: the answer is a `settled` event of the call (its
 * outcome row stays as written) and the reservation becomes spent or released. Never turns spent into released:
 * only reservations still `unknown` are settled.
 */
export async function settleUnknownOutcomes(deps: ReconcileDeps, backoff: Backoff): Promise<SettleSummary> {
  const clock = deps.clock ?? (() => new Date());
  const now = clock();
  const tools = new Map(deps.tools.map((tool) => [tool.name, tool]));
  const unknown = deps.db
    .prepare<[string], { call_id: string }>("SELECT call_id FROM reservations WHERE state = 'unknown' AND reserved_at <= ? ORDER BY reserved_at LIMIT 50")
    .all(new Date(now.getTime() - SETTLE_AFTER_MS).toISOString());
  const summary: SettleSummary = { settled: 0, happened: 0, didNotHappen: 0, pending: 0 };
  const decisionOf = deps.db.prepare<[string], AuditRow>("SELECT * FROM audit_log WHERE call_id = ? AND kind = 'decision' LIMIT 1");
  const settle = deps.db.prepare<[string, string]>("UPDATE reservations SET state = ? WHERE call_id = ? AND state = 'unknown'");
  for (const { call_id: callId } of unknown) {
    const waiting = backoff.get(callId);
    if (waiting && (waiting.nextAt > now.getTime() || waiting.attempts >= MAX_ATTEMPTS)) {
      summary.pending += 1;
      continue;
    }
    const decision = decisionOf.get(callId);
    const tool = decision?.tool ? tools.get(decision.tool) : undefined;
    if (!decision || !tool?.reconcile) continue;
    let found;
    try {
      found = await tool.reconcile(interruptedCall(decision), { mollie: deps.mollie, payments: deps.payments, locks: deps.locks, clock });
    } catch (error) {
      const attempts = (waiting?.attempts ?? 0) + 1;
      backoff.set(callId, { attempts, nextAt: now.getTime() + Math.min(LONGEST_WAIT_MS, FIRST_RETRY_MS * 2 ** attempts) });
      if (attempts === MAX_ATTEMPTS) deps.logger.error({ audit_id: callId, err: error }, 'Gave up asking Mollie about a call whose outcome is unknown; its reservation keeps counting until a person checks');
      summary.pending += 1;
      continue;
    }
    const written = await immediateWhenFree(deps.db, () => {
      if (settle.run(found.happened ? 'spent' : 'released', callId).changes === 0) return false;
      deps.audit.append({
        call_id: callId,
        kind: 'event',
        agent: decision.agent,
        transport: decision.transport,
        tool: decision.tool,
        reason: 'settled',
        outcome: found.happened ? 'ok' : 'error',
        action: found.done,
        reason_message: `The outcome at Mollie was unknown; asked again ${Math.round((now.getTime() - Date.parse(decision.at)) / 1000)} s after the decision: ${found.done}.`,
        invoice_id: decision.invoice_id,
        payment_id: found.paymentId ?? decision.payment_id,
        refund_id: found.refundId,
      });
      return true;
    });
    backoff.delete(callId);
    if (!written) continue;
    summary.settled += 1;
    if (found.happened) summary.happened += 1;
    else summary.didNotHappen += 1;
  }
  if (summary.settled > 0) deps.logger.info(summary, 'Settled calls whose outcome at Mollie was unknown');
  return summary;
}

function interruptedCall(decision: AuditRow): InterruptedCall {
  return {
    callId: decision.call_id,
    agent: decision.agent ?? '',
    paymentId: decision.payment_id,
    invoiceId: decision.invoice_id,
    amount: decision.amount_value !== null && decision.amount_currency !== null ? { value: decision.amount_value, currency: decision.amount_currency } : null,
    idempotencyKey: decision.idempotency_key,
    decidedAt: decision.at,
  };
}
