/**
 * Puts the parts of one server process together: policies, the database (audit log, reservations, payment records),
 * the Mollie port and the gate. Transports and commands get an Engine and never assemble these themselves.
 */
import type { Logger } from 'pino';
import { Approvals, type Approval } from './approvals/approvals.js';
import { ApprovalNotifier } from './approvals/notify.js';
import { checkApprovers } from './people/approver-check.js';
import { PeopleStore } from './people/people-store.js';
import { PolicyError } from './policy/load-policies.js';
import { AuditLog } from './audit/audit-log.js';
import { commandLine, databaseArgs } from './commands/command-line.js';
import { ConfigError, type Config } from './config.js';
import type { SqliteDatabase } from './database.js';
import { openServerDatabase } from './store/open-database.js';
import { claimDatabase } from './database-kind.js';
import { Gate } from './gate.js';
import { openMolliePort } from './mollie/open-port.js';
import type { MolliePort } from './mollie/port.js';
import type { SimulatorOptions } from './mollie/simulator.js';
import { SqliteSimulatorState } from './mollie/simulator-state.js';
import { PaymentRecords } from './payments/payment-records.js';
import { PolicyStore } from './policy/policy-store.js';
import { reconcileInterrupted, settleUnknownOutcomes, type Backoff, type ReconcileSummary } from './reconcile.js';
import { ServerInstance } from './server-instances.js';
import type { PolicySet } from './policy/policy.js';
import { Reservations } from './policy/reservations.js';
import { TOOLS, TOOL_CAPABILITIES } from '../tools/index.js';

/** How long a refund on the simulator stays pending before it is refunded, as Mollie settles refunds later. */
export const SIMULATED_REFUND_SETTLES_MS = 10_000;

export interface Engine {
  gate: Gate;
  db: SqliteDatabase;
  audit: AuditLog;
  mollie: MolliePort;
  payments: PaymentRecords;
  approvals: Approvals;
  /** The people file in force (MOLLIE_MCP_PEOPLE), or null: then approvals are made under OS user names. */
  people: PeopleStore | null;
  /** Where links in messages point to the console; the HTTP server sets its own address when none is configured. */
  setConsoleUrl(url: string): void;
  readonly consoleUrl: string | null;
  /** The policies in force at this moment (they follow edits to policies/ while serving). */
  readonly policies: PolicySet;
  /**
   * Settles the calls a stopped process left without an outcome, and the calls whose outcome at Mollie was unknown,
   * asking Mollie what became of them. A serving engine also does this every so often while it runs.
   */
  reconcile(): Promise<ReconcileSummary>;
  /** Calls `listener` after a policy edit took effect; returns the way to stop. */
  onPoliciesChanged(listener: () => void): () => void;
  close(): void;
}

export interface EngineOptions {
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
  /** A port chosen by the caller (the demo's shared simulator); otherwise from the configuration. */
  mollie?: MolliePort;
  /**
   * A serving process: follow edits to policies/, and register as a live process on the database so others starting
   * later do not take its calls in flight for interrupted ones. The demo and one-off commands do neither.
   */
  serving?: boolean;
  /** Settings for the offline simulator, e.g. where its checkout page is served. */
  simulatorOptions?: SimulatorOptions;
  /** Signed checkpoints of the audit log's head, made for the database once it is open (serve loads the key). */
  checkpoints?: (db: SqliteDatabase, audit: AuditLog) => { close(): void };
  clock?: () => Date;
}

export function openEngine(config: Config, options: EngineOptions): Engine {
  const policyStore = new PolicyStore(config.policiesDir, TOOL_CAPABILITIES, options.logger);
  // The people file and the policies are read together before the database opens: an approver named in a policy who
  // cannot approve stops the server, and creates no file.
  const people = config.peopleFile !== null ? new PeopleStore(config.peopleFile, options.logger) : null;
  const approverProblems = checkApprovers(policyStore.current(), people?.current() ?? null);
  if (approverProblems.length > 0) throw new PolicyError(approverProblems);
  // Real Mollie's credential is checked before the database opens: a missing key creates no file.
  const chosen = options.mollie ?? (config.simulator ? null : openMolliePort({ env: options.env, logger: options.logger }));
  const { db, name: storeName, kind: storeKind } = openServerDatabase(config);
  let mollie: MolliePort;
  try {
    // A port the caller chose (the demo's) is a simulator on a database of its own.
    claimDatabase(db, storeName, (chosen?.kind ?? 'simulator') === 'simulator' ? 'simulator' : 'mollie', options.env);
    mollie =
      chosen ??
      openMolliePort({
        env: options.env,
        simulator: true,
        logger: options.logger,
        // The simulator keeps its payments in this database, so every process on the file shares one simulated Mollie.
        simulatorOptions: { refundSettlesAfterMs: SIMULATED_REFUND_SETTLES_MS, ...options.simulatorOptions, state: new SqliteSimulatorState(db) },
      });
  } catch (error) {
    db.close();
    throw error;
  }
  const clock = options.clock ?? (() => new Date());
  const audit = new AuditLog(db, clock);
  policyStore.recordTo(audit);
  people?.recordTo(audit);
  if (options.serving) {
    const named = db.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'named_approvers'").get()?.value ?? '';
    if (people === null && named !== '') {
      // A server here without the people file would count any OS user's approval: fail closed, as for the kind.
      db.close();
      throw new ConfigError(
        `Approvals on ${storeName} are made by named people (people file ${named}), and this server has no people file: set MOLLIE_MCP_PEOPLE=${named} (or --people). ` +
          `To stop using named approvers on this database, remove its mark: ${storeKind === 'postgres' ? 'psql' : `sqlite3 '${config.dbPath}'`} "DELETE FROM store_meta WHERE key = 'named_approvers'".`,
      );
    }
    policyStore.watch();
    // Tells `approve` on this database, and every server starting on it later, that approvers are named people.
    if (people) db.prepare("INSERT INTO store_meta (key, value) VALUES ('named_approvers', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(people.path);
  }
  const payments = new PaymentRecords(db, clock);
  let consoleUrl = config.consoleUrl;
  const approvals = new Approvals(db, audit, clock, (args) => commandLine([...args, ...databaseArgs(config)], options.env), () => people?.current() ?? null, () => consoleUrl);
  const notifier =
    config.approvalNotifyUrl !== null
      ? new ApprovalNotifier(config.approvalNotifyUrl, options.logger, () => consoleUrl, (approval: Approval) => approvals.approveCommand(approval.approvalId))
      : null;
  const gate = new Gate({
    db,
    audit,
    reservations: new Reservations(db),
    approvals,
    approvalSettings: { ttlMs: config.approvalTtlMs, confirmTimeoutMs: config.confirmTimeoutMs, askInClient: config.confirmInClient },
    payments,
    mollie,
    policies: () => policyStore.current(),
    settings: { redirectUrl: config.redirectUrl, webhookUrl: config.webhookUrl, linkValidDays: config.linkValidDays },
    tools: TOOLS,
    logger: options.logger,
    clock,
    refusedCallsPerMinute: config.refusedCallsPerMinute,
    namedApprovers: () => people !== null,
    ...(notifier ? { onApprovalAsked: (approval: Approval) => notifier.approvalAsked(approval) } : {}),
  });
  const instance = options.serving ? new ServerInstance(db, gate.instanceId, clock) : null;
  const checkpoints = options.checkpoints?.(db, audit) ?? null;
  const reconcileDeps = { db, audit, mollie, payments, locks: gate.locks, tools: TOOLS, logger: options.logger, instanceId: gate.instanceId, clock };
  const backoff: Backoff = new Map();
  const reconcile = async (): Promise<ReconcileSummary> => {
    const summary = await reconcileInterrupted(reconcileDeps);
    await settleUnknownOutcomes(reconcileDeps, backoff);
    // Questions put to 2026-07-28 clients that no repeat answered in time: closed as a prompt nobody answered.
    try {
      await gate.closeUnansweredQuestions();
    } catch (error) {
      options.logger.warn({ err: error }, 'Could not close the unanswered questions yet; trying again on the next pass');
    }
    return summary;
  };
  const settler = options.serving ? new Settler(reconcile, options.logger) : null;
  return {
    gate,
    db,
    audit,
    mollie,
    payments,
    approvals,
    people,
    setConsoleUrl: (url) => {
      consoleUrl ??= url;
    },
    get consoleUrl() {
      return consoleUrl;
    },
    get policies() {
      return policyStore.current();
    },
    reconcile: () => (settler ? settler.now() : reconcile()),
    onPoliciesChanged: (listener) => policyStore.onChange(listener),
    close: () => {
      settler?.stop();
      gate.close();
      checkpoints?.close();
      policyStore.close();
      instance?.close();
      db.close();
    },
  };
}

/** Passes of reconciliation while serving, one at a time: soon while an interrupted call waits to be old enough. */
class Settler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReconcileSummary> | null = null;
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<ReconcileSummary>,
    private readonly logger: Logger,
  ) {}

  /** Runs a pass now (or joins the one running), then keeps them coming. */
  now(): Promise<ReconcileSummary> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    void this.running.then(
      (summary) => this.schedule(summary.waiting > 0 ? 10_000 : 60_000),
      (error: unknown) => {
        this.logger.warn({ err: error }, 'Reconciling stopped early; trying again in a minute');
        this.schedule(60_000);
      },
    );
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.now().catch(() => undefined), ms);
    this.timer.unref();
  }
}
