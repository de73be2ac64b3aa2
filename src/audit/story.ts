/**
 * The story of a payment, a payment link or an invoice: every call, webhook and approval about it, in the order the
 * log recorded them, each with who did it, what was decided and by which rule and policy file, who approved it and
 * what Mollie answered. Plain data (the `audit story` command prints it; a console page can show it), read through the
 * log's indexes only: by invoice (audit_invoice), by payment or link (audit_payment) and by call (audit_call), so a
 * story costs the same on the millionth call as on the first.
 */
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../database.js';
import type { AuditRow } from './audit-log.js';
import { summarize, type CallOutcome } from './call-entries.js';
import { printable } from './printable.js';

export type StoryKind = 'payment' | 'payment_link' | 'invoice';
export type StoryEntryKind = 'call' | 'webhook' | 'approval' | 'event';

/** Mollie's error answer as the outcome row recorded it; `detail` alone when the column held no JSON object. */
export interface MollieAnswer {
  status: number | null;
  title: string | null;
  detail: string | null;
  field: string | null;
}

export interface StoryEntry {
  /** The time and position of the entry's first row (a call's decision row). */
  at: string;
  seq: number;
  /** The call; for an approval's events, the approval id (`ap_...`). */
  call_id: string;
  /** The agent column: the agent, `mollie-webhook`, `server`, or null. */
  actor: string | null;
  kind: StoryEntryKind;
  transport: string | null;
  tool: string | null;
  /** What was asked (a call's decision row) or what happened (an event), in words. */
  action: string | null;
  /** One plain sentence: who did what, what was decided and what came of it. */
  summary: string;
  /** Calls only. */
  decision: 'allowed' | 'denied' | null;
  /** A call's decision reason (`allowed`, `approved`, `approval_required`, ...) or an event's name (`approval_approved`, ...). */
  reason: string | null;
  reason_message: string | null;
  rule: string | null;
  /** sha256 of the policy file that decided, as the decision row has it. */
  policy_sha256: string | null;
  /** A call's outcome (`pending` while it has none); an event's own outcome (a `settled` event), else null. */
  outcome: CallOutcome | null;
  /** What came of a call, in words: its outcome row's action. */
  result: string | null;
  /** The amount asked for; the currency is null when only Mollie knew it (a refused refund). */
  amount: { value: string; currency: string | null } | null;
  invoice_id: string | null;
  payment_id: string | null;
  payment_link_id: string | null;
  refund_id: string | null;
  error_code: string | null;
  error_message: string | null;
  mollie_error: MollieAnswer | null;
  duration_ms: number | null;
  /** The approval a call used, or the approval an approval event belongs to. */
  approval_id: string | null;
  /** The person an approval event names (who approved or rejected). */
  by: string | null;
  /** Approval events: everyone who has approved so far; a call: everyone who approved the approval it used. */
  approvers: string[];
}

export interface Story {
  /** The id asked about. */
  id: string;
  kind: StoryKind;
  invoice_id: string | null;
  payment_ids: string[];
  payment_link_ids: string[];
  /** Oldest first. */
  entries: StoryEntry[];
  /** Everyone who approved anything in it, in the order they first appear. */
  approvers: string[];
}

const PAYMENT_ID = /^tr_[A-Za-z0-9]{1,64}$/;
const PAYMENT_LINK_ID = /^pl_[A-Za-z0-9]{1,64}$/;
const INVOICE_ID = /^[A-Za-z0-9._/-]{1,64}$/;
const APPROVAL_ID = /^ap_[A-Za-z0-9]{1,64}$/;
/** The webhook's actor (src/webhooks/mollie-webhook.ts), named here so reading the log does not load the webhook. */
const WEBHOOK_ACTOR = 'mollie-webhook';

/** What a story can be asked about: a payment id, a payment link id or an invoice id (as the tools accept them). */
export function isStoryId(id: string): boolean {
  return PAYMENT_ID.test(id) || PAYMENT_LINK_ID.test(id) || INVOICE_ID.test(id);
}

/** The columns a story reads: every one but the hash chain's own, and the client's name and idempotency key. */
const STORY_COLUMNS = [
  'seq', 'call_id', 'kind', 'at', 'agent', 'transport', 'tool', 'arguments', 'invoice_id', 'payment_id', 'refund_id', 'amount_value',
  'amount_currency', 'decision', 'reason', 'reason_message', 'rule', 'policy_sha256', 'action', 'outcome', 'error_code', 'error_message',
  'mollie_error', 'duration_ms',
] as const satisfies readonly (keyof AuditRow)[];

type Row = Pick<AuditRow, (typeof STORY_COLUMNS)[number]>;

const ROW_COLUMNS = STORY_COLUMNS.join(', ');

/**
 * Every row of every call that names the invoice or one of the ids: the calls are found by audit_invoice and
 * audit_payment, their rows by audit_call, so a call's decision and outcome both come even when only one names the id.
 */
const ROWS_SQL = `SELECT ${ROW_COLUMNS} FROM audit_log
  WHERE call_id IN (
    SELECT call_id FROM audit_log WHERE invoice_id = @invoice
    UNION SELECT call_id FROM audit_log WHERE payment_id IN (SELECT value FROM json_each(@ids))
  )
  ORDER BY seq`;
const APPROVAL_EVENTS_SQL = "SELECT seq, reason, arguments FROM audit_log WHERE call_id = ? AND kind = 'event' ORDER BY seq";

interface Lookups {
  rows: Statement<unknown[]>;
  approvalEvents: Statement<unknown[]>;
  /** null: this database has no such table or column (a file written by an older version, read as it is). */
  paymentById: Statement<unknown[]> | null;
  paymentsOfInvoice: Statement<unknown[]> | null;
  paymentsOfLink: Statement<unknown[]> | null;
  linkById: Statement<unknown[]> | null;
  linksOfInvoice: Statement<unknown[]> | null;
}

const lookups = new WeakMap<SqliteDatabase, Lookups>();

function lookupsOf(db: SqliteDatabase): Lookups {
  let found = lookups.get(db);
  if (found) return found;
  const columns = (table: string): Set<string> => new Set(db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all().map((column) => column.name));
  const payments = columns('payments');
  const links = columns('payment_links');
  const withLinks = payments.has('link_id');
  found = {
    rows: db.prepare(ROWS_SQL),
    approvalEvents: db.prepare(APPROVAL_EVENTS_SQL),
    paymentById: payments.size > 0 ? db.prepare(`SELECT payment_id, invoice_id, ${withLinks ? 'link_id' : 'NULL AS link_id'} FROM payments WHERE payment_id = ?`) : null,
    paymentsOfInvoice: payments.size > 0 ? db.prepare('SELECT payment_id FROM payments WHERE invoice_id = ? ORDER BY created_at, rowid') : null,
    paymentsOfLink: withLinks ? db.prepare('SELECT payment_id FROM payments WHERE link_id = ? ORDER BY created_at, rowid') : null,
    linkById: links.size > 0 ? db.prepare('SELECT link_id, invoice_id FROM payment_links WHERE link_id = ?') : null,
    linksOfInvoice: links.size > 0 ? db.prepare('SELECT link_id FROM payment_links WHERE invoice_id = ? ORDER BY created_at, rowid') : null,
  };
  lookups.set(db, found);
  return found;
}

interface Resolved {
  kind: StoryKind;
  invoiceId: string | null;
  paymentIds: string[];
  linkIds: string[];
  /** Whether the payments or payment_links tables know the id. */
  known: boolean;
}

function column<T>(statement: Statement<unknown[]> | null, name: string, arg: string): T[] {
  if (!statement) return [];
  return (statement.all(arg) as Record<string, T>[]).map((row) => row[name]!);
}

/** The ids that belong with `id`: its invoice, and that invoice's (or that link's) payments and links. */
function resolve(db: SqliteDatabase, id: string): Resolved | null {
  const q = lookupsOf(db);
  if (PAYMENT_ID.test(id)) {
    const payment = q.paymentById?.get(id) as { payment_id: string; invoice_id: string; link_id: string | null } | undefined;
    if (payment) return { kind: 'payment', invoiceId: payment.invoice_id, paymentIds: [id], linkIds: payment.link_id ? [payment.link_id] : [], known: true };
    return { kind: 'payment', invoiceId: null, paymentIds: [id], linkIds: [], known: false };
  }
  if (PAYMENT_LINK_ID.test(id)) {
    const link = q.linkById?.get(id) as { link_id: string; invoice_id: string } | undefined;
    const paymentIds = column<string>(q.paymentsOfLink, 'payment_id', id);
    return { kind: 'payment_link', invoiceId: link?.invoice_id ?? null, paymentIds, linkIds: [id], known: link !== undefined || paymentIds.length > 0 };
  }
  return INVOICE_ID.test(id) ? invoiceOf(db, id) : null;
}

/**
 * The story of a payment (`tr_...`), a payment link (`pl_...`) or an invoice id; null when neither the log nor the
 * payments and payment_links tables mention it. A `tr_` or `pl_` id nothing knows is tried as an invoice id too, as
 * invoice ids may look like one.
 */
export function buildStory(db: SqliteDatabase, id: string): Story | null {
  const resolved = resolve(db, id);
  if (!resolved) return null;
  const story = tell(db, id, resolved);
  if (story.entries.length > 0 || resolved.known) return story;
  if (resolved.kind !== 'invoice' && INVOICE_ID.test(id)) {
    const invoice = invoiceOf(db, id);
    const other = tell(db, id, invoice);
    if (other.entries.length > 0 || invoice.known) return other;
  }
  return null;
}

function invoiceOf(db: SqliteDatabase, invoiceId: string): Resolved {
  const q = lookupsOf(db);
  const linkIds = column<string>(q.linksOfInvoice, 'link_id', invoiceId);
  const paymentIds = column<string>(q.paymentsOfInvoice, 'payment_id', invoiceId);
  return { kind: 'invoice', invoiceId, paymentIds, linkIds, known: linkIds.length > 0 || paymentIds.length > 0 };
}

function tell(db: SqliteDatabase, id: string, resolved: Resolved): Story {
  const q = lookupsOf(db);
  const rows = q.rows.all({ invoice: resolved.invoiceId, ids: JSON.stringify([...resolved.paymentIds, ...resolved.linkIds]) }) as Row[];
  const approvals = new Map<string, string[]>();
  const approversOf = (approvalId: string): string[] => {
    let names = approvals.get(approvalId);
    if (!names) {
      names = [];
      for (const event of q.approvalEvents.all(approvalId) as { reason: string | null; arguments: string | null }[]) addAll(names, eventPeople(event).approvers);
      approvals.set(approvalId, names);
    }
    return names;
  };
  const entries = group(rows).map((group) => toEntry(group, approversOf));
  const approvers: string[] = [];
  for (const entry of entries) addAll(approvers, entry.approvers);
  return {
    id,
    kind: resolved.kind,
    invoice_id: resolved.invoiceId,
    payment_ids: resolved.paymentIds,
    payment_link_ids: resolved.linkIds,
    entries,
    approvers,
  };
}

/** A call's decision and outcome rows together; each event row alone. In the order of each group's first row. */
interface Group {
  decision: Row | null;
  outcome: Row | null;
  event: Row | null;
}

function group(rows: readonly Row[]): Group[] {
  const groups: Group[] = [];
  const calls = new Map<string, Group>();
  for (const row of rows) {
    if (row.kind === 'event') {
      groups.push({ decision: null, outcome: null, event: row });
      continue;
    }
    let call = calls.get(row.call_id);
    if (!call) {
      call = { decision: null, outcome: null, event: null };
      calls.set(row.call_id, call);
      groups.push(call);
    }
    // A log written before 0.5 may hold a call with two outcomes: the first is the one kept, as audit_call kept it.
    if (row.kind === 'decision') call.decision ??= row;
    else call.outcome ??= row;
  }
  return groups;
}

function toEntry(group: Group, approversOf: (approvalId: string) => string[]): StoryEntry {
  if (group.event) return eventEntry(group.event);
  const decision = group.decision;
  const outcome = group.outcome;
  const first = (decision ?? outcome)!;
  const ids = [outcome?.payment_id ?? null, decision?.payment_id ?? null];
  const approvalId = decision ? usedApproval(decision) : null;
  const webhook = first.agent === WEBHOOK_ACTOR;
  const callOutcome: CallOutcome = outcome?.outcome ?? 'pending';
  return {
    at: first.at,
    seq: first.seq,
    call_id: first.call_id,
    actor: first.agent,
    kind: webhook ? 'webhook' : 'call',
    transport: first.transport,
    tool: decision?.tool ?? outcome?.tool ?? null,
    action: decision?.action ?? null,
    summary: webhook ? webhookSentence(decision, outcome, callOutcome) : callSentence(decision, outcome, callOutcome),
    decision: decision?.decision ?? null,
    reason: decision?.reason ?? null,
    reason_message: decision?.reason_message ?? null,
    rule: decision?.rule ?? null,
    policy_sha256: decision?.policy_sha256 ?? null,
    outcome: callOutcome,
    result: outcome?.action ?? null,
    amount: amountOf(decision),
    invoice_id: outcome?.invoice_id ?? decision?.invoice_id ?? null,
    payment_id: withPrefix('tr_', ids),
    payment_link_id: withPrefix('pl_', ids),
    refund_id: outcome?.refund_id ?? decision?.refund_id ?? null,
    error_code: outcome?.error_code ?? null,
    error_message: outcome?.error_message ?? null,
    mollie_error: mollieAnswer(outcome?.mollie_error ?? null),
    duration_ms: outcome?.duration_ms ?? null,
    approval_id: approvalId,
    by: null,
    // Only a call let through on an approval was approved by its approvers; a call refused on one was not.
    approvers: approvalId !== null && decision?.decision === 'allowed' ? [...approversOf(approvalId)] : [],
  };
}

function eventEntry(row: Row): StoryEntry {
  const approval = APPROVAL_ID.test(row.call_id) && (row.reason ?? '').startsWith('approval_');
  const people = approval ? eventPeople(row) : { by: null, approvers: [] };
  return {
    at: row.at,
    seq: row.seq,
    call_id: row.call_id,
    actor: row.agent,
    kind: approval ? 'approval' : 'event',
    transport: row.transport,
    tool: row.tool,
    action: row.action,
    summary: printable(row.reason_message ?? `${row.agent ?? 'The server'}: ${row.reason ?? 'event'}${row.action ? ` (${row.action})` : ''}.`),
    decision: null,
    reason: row.reason,
    reason_message: row.reason_message,
    rule: row.rule,
    policy_sha256: row.policy_sha256,
    outcome: row.outcome,
    result: null,
    amount: amountOf(row),
    invoice_id: row.invoice_id,
    payment_id: withPrefix('tr_', [row.payment_id]),
    payment_link_id: withPrefix('pl_', [row.payment_id]),
    refund_id: row.refund_id,
    error_code: row.error_code,
    error_message: row.error_message,
    mollie_error: mollieAnswer(row.mollie_error),
    duration_ms: row.duration_ms,
    approval_id: approval ? row.call_id : null,
    by: people.by,
    approvers: people.approvers,
  };
}

function callSentence(decision: Row | null, outcome: Row | null, callOutcome: CallOutcome): string {
  if (decision?.decision) {
    return summarize({ ...decision, decision: decision.decision, outcome_action: outcome?.action ?? null, error_message: outcome?.error_message ?? null }, callOutcome);
  }
  // An outcome without its decision row (a log written by an older version, or cut): what is known.
  const who = (decision ?? outcome)?.agent ?? 'A caller with no agent';
  return printable(`${who} called ${(decision ?? outcome)?.tool ?? 'an unknown tool'}: no decision recorded; ${outcome?.action ?? outcome?.error_message ?? 'no outcome recorded'}.`);
}

/** "Mollie reported a change to payment tr_x: payment tr_x through payment link pl_y ... is paid." */
function webhookSentence(decision: Row | null, outcome: Row | null, callOutcome: CallOutcome): string {
  const reported = /^(.*?) reported a change to payment (\S+?);/.exec(decision?.reason_message ?? '');
  const opening = reported ? `${reported[1]} reported a change to payment ${reported[2]}` : `A webhook reported a change${decision?.payment_id ? ` to payment ${decision.payment_id}` : ''}`;
  switch (callOutcome) {
    case 'ok':
      return printable(`${opening}: ${outcome?.action ?? 'recorded'}.`);
    case 'pending':
      return printable(`${opening}; no outcome recorded yet.`);
    default:
      return printable(`${opening}; not recorded: ${outcome?.error_message ?? 'no detail recorded'}`);
  }
}

function amountOf(row: Row | null): StoryEntry['amount'] {
  return row?.amount_value ? { value: row.amount_value, currency: row.amount_currency } : null;
}

function withPrefix(prefix: 'tr_' | 'pl_', ids: readonly (string | null)[]): string | null {
  return ids.find((id) => id !== null && id.startsWith(prefix)) ?? null;
}

function parsedObject(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The approval id a call gave in its arguments, if it is one. */
function usedApproval(decision: Row): string | null {
  const approvalId = parsedObject(decision.arguments)?.approval_id;
  return typeof approvalId === 'string' && APPROVAL_ID.test(approvalId) ? approvalId : null;
}

const PERSON_MAX = 200;
const isName = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= PERSON_MAX;

/**
 * Who an approval event names: `by`, the person who acted, and `approvers`, everyone who has approved so far (the
 * steps of an approval that needs several people, and its use); a step with `by` alone that approved names its
 * approver. The request's own event lists in `approvers` who may approve, not who did: it names nobody.
 */
function eventPeople(row: { reason: string | null; arguments: string | null }): { by: string | null; approvers: string[] } {
  const reason = row.reason ?? '';
  if (reason === 'approval_asked') return { by: null, approvers: [] };
  const args = parsedObject(row.arguments);
  const by = isName(args?.by) ? args.by : null;
  const approvers: string[] = [];
  if (Array.isArray(args?.approvers)) addAll(approvers, args.approvers.filter(isName));
  if (by !== null && /approv/.test(reason) && !/reject/.test(reason)) addAll(approvers, [by]);
  return { by, approvers };
}

function addAll(into: string[], names: readonly string[]): void {
  for (const name of names) if (!into.includes(name)) into.push(name);
}

function mollieAnswer(text: string | null): MollieAnswer | null {
  if (text === null) return null;
  const answer = parsedObject(text);
  if (!answer) return { status: null, title: null, detail: text, field: null };
  const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  return { status: typeof answer.status === 'number' ? answer.status : null, title: str(answer.title), detail: str(answer.detail), field: str(answer.field) };
}

const KIND_NAMES: Record<StoryKind, string> = { payment: 'payment', payment_link: 'payment link', invoice: 'invoice' };

function utc(at: string): string {
  return `${at.slice(0, 19).replace('T', ' ')} UTC`;
}

function list(ids: readonly string[]): string {
  return ids.map(printable).join(', ');
}

/**
 * The story as plain text for a terminal: a header naming what it is about, then one block per entry. Every text from
 * the database passes through printable(); the arguments column is never printed.
 */
export function storyLines(story: Story): string[] {
  const about: string[] = [];
  if (story.kind !== 'invoice' && story.invoice_id !== null) about.push(`invoice ${printable(story.invoice_id)}`);
  const links = story.kind === 'payment_link' ? [] : story.payment_link_ids;
  const payments = story.kind === 'payment' ? [] : story.payment_ids;
  if (links.length > 0) about.push(`payment link${links.length > 1 ? 's' : ''} ${list(links)}`);
  if (payments.length > 0) about.push(`payment${payments.length > 1 ? 's' : ''} ${list(payments)}`);
  const lines = [`Story of ${KIND_NAMES[story.kind]} ${printable(story.id)}${about.length > 0 ? ` (${about.join('; ')})` : ''}`];
  const first = story.entries[0];
  const last = story.entries.at(-1);
  if (!first || !last) {
    lines.push('Nothing in the audit log names it yet.');
    return lines;
  }
  const calls = story.entries.filter((entry) => entry.kind === 'call').length;
  const webhooks = story.entries.filter((entry) => entry.kind === 'webhook').length;
  const approvals = story.entries.filter((entry) => entry.kind === 'approval').length;
  const events = story.entries.length - calls - webhooks - approvals;
  const counts = [`${calls} call${calls === 1 ? '' : 's'}`, `${webhooks} webhook${webhooks === 1 ? '' : 's'}`, `${approvals} approval step${approvals === 1 ? '' : 's'}`];
  if (events > 0) counts.push(`${events} other event${events === 1 ? '' : 's'}`);
  lines.push(`${counts.join(', ')}, from ${utc(first.at)} to ${utc(last.at)}.`);
  lines.push(`Approved by: ${story.approvers.length > 0 ? list(story.approvers) : 'nobody'}.`);
  story.entries.forEach((entry, index) => lines.push('', ...entryLines(entry, index + 1)));
  return lines;
}

const ENTRY_TITLES: Record<StoryEntryKind, string> = { call: 'call', webhook: 'webhook', approval: 'approval', event: 'event' };

function entryLines(entry: StoryEntry, number: number): string[] {
  const p = (text: string | null): string => printable(text ?? '');
  const what = entry.kind === 'call' ? ` ${p(entry.tool ?? 'unknown tool')}` : entry.kind === 'webhook' ? '' : ` ${p(entry.reason ?? '')}`;
  const lines = [`${number}. (row ${entry.seq})  ${utc(entry.at)}  ${p(entry.actor ?? '-')}  ${ENTRY_TITLES[entry.kind]}${what}  [${p(entry.call_id)}]`];
  const field = (name: string, value: string): void => {
    lines.push(`  ${`${name}:`.padEnd(11)}${value}`);
  };
  field('what', entry.summary);
  if (entry.decision !== null) {
    // A denial's message is in the sentence above already; an allowed call's says why it was within the policy.
    const reason = entry.reason !== null && entry.reason !== entry.decision ? ` (${p(entry.reason)})` : '';
    const message = entry.kind === 'call' && entry.decision === 'allowed' && entry.reason_message ? `: ${p(entry.reason_message)}` : '';
    field('decision', `${entry.decision}${reason}${message}`);
  }
  if (entry.rule !== null) field('rule', p(entry.rule));
  if (entry.policy_sha256 !== null) field('policy', p(entry.policy_sha256.slice(0, 12)));
  if (entry.amount !== null) field('amount', p(`${entry.amount.value}${entry.amount.currency ? ` ${entry.amount.currency}` : ''}`));
  if (entry.approval_id !== null && entry.kind === 'call') field('approval', p(entry.approval_id));
  if (entry.by !== null) field('by', p(entry.by));
  if (entry.approvers.length > 0) field('approvers', list(entry.approvers));
  if (entry.kind === 'call' || entry.kind === 'webhook') {
    // What came of it is in the sentence above; this line is the outcome alone, easy to look for.
    field('outcome', `${entry.outcome ?? 'pending'}${entry.error_code ? ` (${p(entry.error_code)})` : ''}`);
  } else if (entry.outcome !== null) {
    field('outcome', p(entry.outcome));
  }
  if (entry.mollie_error !== null) field('Mollie', mollieText(entry.mollie_error));
  const ids = [entry.payment_id && `payment ${p(entry.payment_id)}`, entry.payment_link_id && `payment link ${p(entry.payment_link_id)}`, entry.refund_id && `refund ${p(entry.refund_id)}`].filter(Boolean);
  if (ids.length > 0) field('ids', ids.join(', '));
  return lines;
}

function mollieText(answer: MollieAnswer): string {
  const head = [answer.status !== null ? String(answer.status) : null, answer.title].filter((part) => part !== null).join(' ');
  const detail = answer.detail !== null ? `${answer.detail}${answer.field ? ` (field: ${answer.field})` : ''}` : '';
  return printable([head, detail].filter((part) => part !== '').join(': ') || 'an error, with no detail recorded');
}
