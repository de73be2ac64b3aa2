/**
 * Start-up reconciliation: calls whose decision row was written by a process that died (SIGKILL, power cut) before
 * their outcome. Each tool asks Mollie, read-only, whether the call took effect; the answer becomes the call's outcome
 * row and settles its budget reservation (spent if it happened, released if not, kept if Mollie cannot say). Calls
 * that move no money are found by their open_reads row instead, and only get their outcome: nothing changed.
 */
import type { Logger } from 'pino';
import type { AuditLog, AuditRow } from './audit/audit-log.js';
import { immediate, type SqliteDatabase } from './database.js';
import { normalizeFailure } from './tool-error.js';
import type { MolliePort } from './mollie/port.js';
import type { InvoiceLocks } from './payments/invoice-locks.js';
import type { PaymentRecords } from './payments/payment-records.js';
import { OpenReads } from './open-reads.js';
import { instanceAlive } from './server-instances.js';
import type { ToolDefinition } from './tool-definition.js';

/** Calls written by a version without instance ids count as interrupted once they are this old. */
const UNOWNED_AFTER_MS = 10 * 60 * 1000;

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
  const interrupted = open.filter((call) => {
    if (call.instance_id === deps.instanceId) return false;
    if (call.instance_id === null) return now.getTime() - Date.parse(call.opened_at) > UNOWNED_AFTER_MS;
    if (!liveness.has(call.instance_id)) liveness.set(call.instance_id, instanceAlive(deps.db, call.instance_id, now));
    return !liveness.get(call.instance_id);
  });
  const summary: ReconcileSummary = { interrupted: 0, happened: 0, didNotHappen: 0, unknown: 0 };
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
        const found = await tool.reconcile(
          {
            callId: decision.call_id,
            agent: decision.agent ?? '',
            paymentId: decision.payment_id,
            invoiceId: decision.invoice_id,
            amount: decision.amount_value !== null && decision.amount_currency !== null ? { value: decision.amount_value, currency: decision.amount_currency } : null,
            idempotencyKey: decision.idempotency_key,
            decidedAt: decision.at,
          },
          { mollie: deps.mollie, payments: deps.payments, locks: deps.locks, clock },
        );
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
    const written = immediate(deps.db, () => {
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
    deps.audit.append({
      call_id: `reconcile-${now.toISOString()}-${deps.instanceId}`,
      kind: 'event',
      agent: 'server',
      reason: 'reconciled',
      action: 'reconcile interrupted calls at start',
      reason_message: `${summary.interrupted} call(s) interrupted by a server that stopped: ${summary.happened} took effect at Mollie, ${summary.didNotHappen} did not, ${summary.unknown} unknown.`,
      arguments: JSON.stringify(summary),
    });
    deps.logger.warn(summary, 'Reconciled calls interrupted by a server that stopped before their outcome');
  }
  return summary;
}
