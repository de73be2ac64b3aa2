/**
 * `simulate pay|fail|cancel|expire <tr_...|pl_...>`: plays the customer on the simulator's saved state, as its
 * checkout page does, from a terminal; the server hears of it by the path Mollie's webhook takes.
 */
import { AuditLog } from '../audit/audit-log.js';
import { kindOfFile } from '../database-kind.js';
import { SIMULATED_REFUND_SETTLES_MS } from '../engine.js';
import { createLogger } from '../log.js';
import { MollieError } from '../mollie/errors.js';
import { isResourceId } from '../mollie/port.js';
import { CustomerRefused, playCustomer } from '../mollie/simulated-customer.js';
import { MollieSimulator, type CustomerOutcome } from '../mollie/simulator.js';
import { SqliteSimulatorState } from '../mollie/simulator-state.js';
import { PaymentRecords } from '../payments/payment-records.js';
import { MollieWebhook } from '../webhooks/mollie-webhook.js';
import { describeLocation, isPostgresLocation, locationExists, openLocation } from '../store/location.js';
import { UsageError, type CommandOutput } from './output.js';

const OUTCOMES: Record<string, CustomerOutcome> = { pay: 'paid', fail: 'failed', cancel: 'canceled', expire: 'expired' };

export async function simulate(dbPath: string, action: string | undefined, id: string | undefined, logLevel: string, io: CommandOutput): Promise<number> {
  const outcome = action === undefined ? undefined : OUTCOMES[action];
  if (outcome === undefined) throw new UsageError(`simulate needs what the customer does: pay, fail, cancel or expire${action === undefined ? '' : `; got "${action}"`}.`);
  if (id === undefined || (!isResourceId('payment', id) && !isResourceId('paymentLink', id))) {
    throw new UsageError(`simulate ${action} needs a payment id (tr_...) or a payment link id (pl_...), as create_invoice_payment returned it${id === undefined ? '' : `; got "${String(id).slice(0, 64)}"`}.`);
  }
  const where = describeLocation(dbPath);
  if (!locationExists(dbPath)) {
    throw new UsageError(`There is no simulator database at ${where}. Start the server with --simulator first, or name its database with --db (MOLLIE_MCP_DB).`);
  }
  io.err(`Database: ${where}`);
  const db = openLocation(dbPath);
  try {
    const onPostgres = isPostgresLocation(dbPath);
    const hasState = onPostgres || db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'simulator_payments'").get() !== undefined;
    const kind = onPostgres ? db.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'mollie_kind'").get()?.value : kindOfFile(dbPath);
    if (!hasState || kind === 'mollie') {
      throw new UsageError(`${where} holds no simulator payments: it is not the database of a \`serve --simulator\` run. Name that one with --db.`);
    }
    const logger = createLogger(logLevel === 'info' ? 'warn' : logLevel);
    const simulator = new MollieSimulator({ state: new SqliteSimulatorState(db), refundSettlesAfterMs: SIMULATED_REFUND_SETTLES_MS });
    const payments = new PaymentRecords(db);
    const webhook = new MollieWebhook({ mollie: simulator, payments, audit: new AuditLog(db), logger });
    let step;
    try {
      step = await playCustomer(simulator, webhook, id, outcome, 'simulate command');
    } catch (error) {
      if (error instanceof CustomerRefused) {
        io.err(error.message);
        return 1;
      }
      if (error instanceof MollieError && error.code === 'not_found') {
        io.err(`The simulator has no ${id.startsWith('pl_') ? 'payment link' : 'payment'} ${id} in ${where}. Is it the database the server uses (--db)?`);
        return 1;
      }
      throw error;
    }
    if (step.payment === null) {
      io.out(`${id} has expired: nobody can pay through it any more.`);
    } else {
      const { payment } = step;
      const through = id.startsWith('pl_') ? ` through ${id}` : '';
      io.out(`${payment.id}${through}: ${payment.amount.value} ${payment.amount.currency}, now ${payment.status}.`);
    }
    io.out(
      step.heard
        ? 'The server has recorded it, as it records a webhook from Mollie: get_payment_status reads it now.'
        : 'The server could not record it now (see the log above); get_payment_status still asks the simulator and reads it.',
    );
    return 0;
  } finally {
    db.close();
  }
}
