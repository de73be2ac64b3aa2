/**
 * The console at /console on the HTTP server: people sign in with their personal token, approvers approve or reject
 * waiting calls under their own name, auditors read the log, a payment's story and the charts. Every action, and
 * every failed sign-in, is an audit event under the person. The transport has already checked Host and Origin.
 *
 * Sessions: an HttpOnly, SameSite=Strict cookie (Secure behind https), idle expiry, a CSRF token in every form (and a
 * double-submit cookie on the sign-in form), a strict CSP with no inline script, and no token ever in a URL.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { approverNames, type Approval, type Approvals } from '../approvals/approvals.js';
import type { AuditLog, AuditRow } from '../audit/audit-log.js';
import { CursorError, decodeCursor, listCalls, type CallFilter } from '../audit/call-entries.js';
import { buildStory, isStoryId } from '../audit/story.js';
import { verifyLog } from '../audit/verify-parallel.js';
import type { SqliteDatabase } from '../database.js';
import { BodyTooLarge, readBody } from '../http/http-io.js';
import { hasRole, type Person } from '../people/load-people.js';
import type { PeopleStore } from '../people/people-store.js';
import { chartLibrary, CONSOLE_CSS, CONSOLE_JS } from './assets.js';
import { consoleFigures } from './console-figures.js';
import { ConsoleSessions, randomToken, sameSecret, type ConsoleSession } from './console-sessions.js';
import { approvalsPage, chartsPage, CONSOLE_PATH, forbiddenPage, logPage, noPeoplePage, signInPage, storyPage, type ApprovalView, type LogFilters, type Viewer } from './pages.js';
import { SignInLimiter } from './sign-in-limiter.js';

const SESSION_COOKIE = 'mim_console';
const SIGN_IN_COOKIE = 'mim_console_signin';
const MAX_FORM_BODY = 8 * 1024;
/** How long a sign-in form may take to arrive. */
const SIGN_IN_FORM_DEADLINE_MS = 10_000;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const LOG_PAGE = 50;

export interface ConsoleDeps {
  db: SqliteDatabase;
  audit: AuditLog;
  approvals: Approvals;
  people: PeopleStore | null;
  tools: readonly string[];
  logger: Logger;
  idleMs: number;
  /** MOLLIE_MCP_CONSOLE_URL: https there means cookies are Secure. */
  publicUrl: string | null;
  /** Whether a token is an agent's bearer token (an agent's token never signs a person in). */
  isAgentToken: (token: string) => boolean;
  /** Whether a refused request from this address may have an audit row of its own (the server's refusal budget). */
  admitRefusal: (source: string) => boolean;
  /** Refused requests answered without a row of their own: counted into the server's summary of refusals. */
  noteRefused: (source: string, reason: string) => void;
  clock?: () => Date;
}

type Form = Record<string, string>;

export class Console {
  readonly sessions: ConsoleSessions;
  private readonly limiter = new SignInLimiter();
  private readonly clock: () => Date;

  constructor(private readonly deps: ConsoleDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.sessions = new ConsoleSessions(deps.idleMs);
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const sub = path.slice(CONSOLE_PATH.length) || '/';
    if (method === 'GET' && sub.startsWith('/assets/')) return this.asset(res, sub.slice('/assets/'.length));
    if (this.deps.people === null) return this.page(res, 404, noPeoplePage());
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return this.send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed.', { Allow: 'GET, POST' });
    // A cross-site form post carries no SameSite=Strict cookie, but a browser that says so is refused outright.
    if (method === 'POST' && req.headers['sec-fetch-site'] !== undefined && !['same-origin', 'none'].includes(String(req.headers['sec-fetch-site']))) {
      return this.send(res, 403, 'text/plain; charset=utf-8', 'Cross-site requests are refused.');
    }
    if (sub === '/sign-in') return method === 'POST' ? this.signIn(req, res) : this.signInForm(req, res, null, 200);
    const signedIn = this.signedIn(req);
    if (!signedIn) {
      if (method === 'POST') return this.send(res, 403, 'text/plain; charset=utf-8', 'Sign in first: your console session is missing or expired.');
      return this.redirect(res, `${CONSOLE_PATH}/sign-in`);
    }
    const { session, person, id } = signedIn;
    if (method === 'POST') {
      const form = await this.form(req, res);
      if (form === null) return;
      if (!sameSecret(form.csrf ?? '', session.csrf)) {
        await this.refusal(req, person.name, 'console_csrf_refused', `A console form for ${person.name} came without its CSRF token (${req.method} ${path}); nothing was done.`, { path });
        return this.page(res, 403, forbiddenPage(this.viewer(person, session), 'This form did not come from your console page (its CSRF token is missing or wrong), so nothing was done. Reload the page and try again.'));
      }
      if (sub === '/sign-out') return this.signOut(req, res, person, id);
      const decide = /^\/approvals\/(ap_[A-Za-z0-9]{24})$/.exec(sub);
      if (decide) return this.decide(req, res, person, session, decide[1]!, form);
      if (sub === '/verify') return this.verify(req, res, person, session);
      return this.send(res, 404, 'text/plain; charset=utf-8', 'Nothing here.');
    }
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    const viewer = this.viewer(person, session);
    const flash = session.flash;
    session.flash = null;
    if (sub === '/' || sub === '') return this.redirect(res, `${CONSOLE_PATH}/${hasRole(person, 'approver') || !hasRole(person, 'auditor') ? 'approvals' : 'log'}`);
    if (sub === '/approvals') return this.page(res, 200, approvalsPage(viewer, this.pendingViews(person), this.deps.approvals.recent(new Date(this.clock().getTime() - 7 * 86_400_000).toISOString()), flash));
    if (!hasRole(person, 'auditor')) {
      if (['/log', '/story', '/charts'].includes(sub)) return this.page(res, 403, forbiddenPage(viewer, `${person.name} is not an auditor in the people file, so may not read the log, stories or charts.`));
      return this.send(res, 404, 'text/plain; charset=utf-8', 'Nothing here.');
    }
    if (sub === '/log') return this.log(res, viewer, query);
    if (sub === '/story') {
      const storyId = query.get('id')?.trim() ?? '';
      if (storyId === '') return this.page(res, 200, storyPage(viewer, '', null, null));
      if (!isStoryId(storyId)) return this.page(res, 400, storyPage(viewer, storyId, null, 'That is not a payment id (tr_...), a payment link id (pl_...) or an invoice id (letters, digits, . _ / -, at most 64).'));
      const story = buildStory(this.deps.db, storyId);
      return this.page(res, story ? 200 : 404, storyPage(viewer, storyId, story, story ? null : `Nothing in the log is about ${storyId}.`));
    }
    if (sub === '/charts') return this.page(res, 200, chartsPage(viewer, consoleFigures(this.deps.db, this.clock()), flash));
    return this.send(res, 404, 'text/plain; charset=utf-8', 'Nothing here.');
  }

  /** The session behind the request's cookie, if its person is still in the people file with the same token. */
  private signedIn(req: IncomingMessage): { session: ConsoleSession; person: Person; id: string } | null {
    // Every cookie of that name is tried: another page on this host can set one for a longer path, which comes first.
    const valid: { session: ConsoleSession; person: Person; id: string }[] = [];
    for (const id of new Set(cookies(req, SESSION_COOKIE))) {
      const session = this.sessions.get(id);
      if (!session) continue;
      const person = this.deps.people!.current().people.get(session.person);
      if (!person || person.tokenSha256 !== session.tokenSha256) {
        this.sessions.close(id);
        continue;
      }
      valid.push({ session, person, id });
    }
    if (valid.length === 1) return valid[0]!;
    // Two live sessions in one browser: one was planted by another page on this host. Neither is trusted.
    for (const planted of valid) this.sessions.close(planted.id);
    return null;
  }

  private viewer(person: Person, session: ConsoleSession): Viewer {
    return { name: person.name, roles: person.roles, csrf: session.csrf };
  }

  private pendingViews(person: Person): ApprovalView[] {
    const approvers = [...this.deps.people!.current().people.values()].filter((candidate) => hasRole(candidate, 'approver')).map((candidate) => candidate.name);
    return this.deps.approvals.waiting().map((approval: Approval) => {
      const eligible = approval.approvers ?? approvers;
      // Only a vote that counts: a stale one (a rotated token) or a row put in by hand must not hide the buttons.
      const voted = approval.votes.some((vote) => vote.person === person.name && vote.counts !== false);
      const why = !hasRole(person, 'approver')
        ? `${person.name} is not an approver, so may only look.`
        : !eligible.includes(person.name)
          ? `Only ${eligible.join(', ')} may decide this (the policy's approvers).`
          : voted
            ? approval.state === 'approved'
              ? 'You approved this; it has its approvals and waits for the agent to repeat the call.'
              : `You approved this already; ${approval.needed - approverNames(approval).length} more approval(s) must come from other people.`
            : null;
      return { approval, mayDecide: why === null, why, eligible };
    });
  }

  private signInForm(req: IncomingMessage, res: ServerResponse, message: { kind: string; text: string } | null, status: number): void {
    const existing = cookies(req, SIGN_IN_COOKIE).find((value) => /^[A-Za-z0-9_-]{43}$/.test(value));
    const csrf = existing ?? randomToken();
    this.page(res, status, signInPage(csrf, message), { 'Set-Cookie': this.cookieHeader(req, SIGN_IN_COOKIE, csrf, 30 * 60) });
  }

  private async signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const source = req.socket.remoteAddress ?? 'unknown';
    // The whole form first, within a few seconds: a body that never finishes holds no slot and blocks no one.
    const form = await this.form(req, res, SIGN_IN_FORM_DEADLINE_MS);
    if (form === null) return;
    const admitted = this.limiter.admit(source);
    if (!admitted.ok) {
      this.deps.noteRefused(source, 'console_sign_in_slowed');
      res.setHeader('Retry-After', String(admitted.retryAfterSeconds));
      return this.signInForm(req, res, { kind: 'error', text: `Too many wrong tokens from this address. Try again in ${admitted.retryAfterSeconds} seconds.` }, 429);
    }
    const expected = cookies(req, SIGN_IN_COOKIE);
    if (!expected.some((value) => sameSecret(form.csrf ?? '', value))) {
      await this.refusal(req, null, 'console_csrf_refused', 'A sign-in form came without its CSRF token; no token was checked.', {});
      return this.signInForm(req, res, { kind: 'error', text: 'This sign-in form has expired or did not come from this console. Try again.' }, 403);
    }
    const token = (form.token ?? '').trim();
    // An agent's bearer token never signs a person in, whatever the people file says. From admit() to here nothing
    // waits, so attempts sent at once are counted one after another.
    const person = token === '' || this.deps.isAgentToken(token) ? null : this.deps.people!.personForToken(token);
    if (person === null) {
      const failures = this.limiter.failed(source);
      await this.refusal(req, null, 'console_sign_in_failed', `A console sign-in with a token that is nobody's failed (${failures} in a row from ${source}).`, { failures });
      return this.signInForm(req, res, { kind: 'error', text: 'That token is not a personal token in the people file. Ask your administrator for yours.' }, 401);
    }
    this.limiter.succeeded(source);
    // Recorded first: a sign-in the log cannot hold does not happen.
    await this.event(person.name, 'console_signed_in', `${person.name} signed in to the console (${person.roles.join(', ')}).`, req, {});
    const { id } = this.sessions.open(person.name, person.tokenSha256);
    res.setHeader('Set-Cookie', [this.cookieHeader(req, SESSION_COOKIE, id, null), this.cookieHeader(req, SIGN_IN_COOKIE, '', 0)]);
    this.redirect(res, CONSOLE_PATH);
  }

  /**
   * A refused console request's audit event, through the server's per-address budget for refusals: past it, it is
   * counted in the summary event of refused requests instead of a row each, so a flood cannot grow the log.
   */
  private async refusal(req: IncomingMessage, person: string | null, reason: string, message: string, extra: Record<string, unknown>): Promise<void> {
    const source = req.socket.remoteAddress ?? 'unknown';
    if (!this.deps.admitRefusal(source)) {
      this.deps.noteRefused(source, reason);
      return;
    }
    await this.event(person, reason, message, req, extra);
  }

  private async signOut(req: IncomingMessage, res: ServerResponse, person: Person, id: string): Promise<void> {
    this.sessions.close(id);
    await this.event(person.name, 'console_signed_out', `${person.name} signed out of the console.`, req, {});
    res.setHeader('Set-Cookie', this.cookieHeader(req, SESSION_COOKIE, '', 0));
    this.redirect(res, `${CONSOLE_PATH}/sign-in`);
  }

  private async decide(req: IncomingMessage, res: ServerResponse, person: Person, session: ConsoleSession, approvalId: string, form: Form): Promise<void> {
    const decision = form.decision === 'approve' ? 'approved' : form.decision === 'reject' ? 'rejected' : null;
    if (decision === null) return this.page(res, 400, forbiddenPage(this.viewer(person, session), 'The form must say approve or reject.'));
    if (!hasRole(person, 'approver')) {
      await this.event(person.name, 'console_decision_refused', `${person.name} tried to ${form.decision} approval ${approvalId} in the console but is not an approver; nothing changed.`, req, { approval_id: approvalId });
      return this.page(res, 403, forbiddenPage(this.viewer(person, session), `${person.name} is not an approver in the people file, so may not approve or reject anything. Nothing changed.`));
    }
    let result;
    try {
      result = this.deps.approvals.decide(approvalId, decision, { name: person.name, via: 'console', authenticated: true, tokenSha256: person.tokenSha256, roles: person.roles, note: form.note ?? null });
    } catch (error) {
      this.deps.logger.error({ err: error }, 'Could not record a decision from the console');
      return this.page(res, 503, forbiddenPage(this.viewer(person, session), 'The decision could not be recorded in the audit log, so nothing changed. Try again in a moment.'));
    }
    if (!result.ok) {
      await this.event(person.name, 'console_decision_refused', `${person.name} could not ${form.decision} approval ${approvalId}: ${result.message}`, req, { approval_id: approvalId });
      const status = result.forbidden ? 403 : 409;
      return this.page(res, status, approvalsPage(this.viewer(person, session), this.pendingViews(person), [], { kind: 'error', text: result.message }));
    }
    const approval = result.approval;
    const given = approval.votes.filter((vote) => vote.decision === 'approved').length;
    session.flash = {
      kind: 'ok',
      text:
        decision === 'rejected'
          ? `You rejected ${approval.approvalId}: ${approval.action}. The agent is refused if it repeats the call.`
          : approval.state === 'approved'
            ? `You approved ${approval.approvalId}: ${approval.action}. It has all ${approval.needed} approval(s); agent "${approval.agent}" may repeat the call once.`
            : `You approved ${approval.approvalId}: ${approval.action}. ${approval.needed - given} more approval(s) from other people are needed.`,
    };
    this.redirect(res, `${CONSOLE_PATH}/approvals`);
  }

  private async verify(req: IncomingMessage, res: ServerResponse, person: Person, session: ConsoleSession): Promise<void> {
    if (!hasRole(person, 'auditor')) return this.page(res, 403, forbiddenPage(this.viewer(person, session), `${person.name} is not an auditor.`));
    const result = await verifyLog(this.deps.db, this.deps.db.name);
    const text = result.ok ? `intact, ${result.rows} rows, last hash ${result.lastHash.slice(0, 16)}… (this check is written as row ${result.rows + 1})` : `BROKEN at row ${result.firstBad.seq}: ${result.firstBad.problem}`;
    const row = await this.event(person.name, 'chain_verified', text, req, { ok: result.ok, rows: result.rows });
    this.deps.db
      .prepare("INSERT INTO store_meta (key, value) VALUES ('last_chain_verify', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
      .run(JSON.stringify({ at: row.at, by: person.name, result: text }));
    session.flash = { kind: result.ok ? 'ok' : 'error', text: `The hash chain is ${text}.` };
    this.redirect(res, `${CONSOLE_PATH}/charts`);
  }

  private log(res: ServerResponse, viewer: Viewer, query: URLSearchParams): void {
    const get = (name: string): string | undefined => {
      const value = query.get(name)?.trim();
      return value === undefined || value === '' ? undefined : value.slice(0, 100);
    };
    const filters: LogFilters = { agent: get('agent'), tool: get('tool'), decision: get('decision'), outcome: get('outcome'), invoice: get('invoice'), payment: get('payment'), since: get('since'), until: get('until') };
    const problems: string[] = [];
    const time = (name: 'since' | 'until'): string | undefined => {
      const value = filters[name];
      if (value === undefined) return undefined;
      const parsed = Date.parse(value);
      if (Number.isNaN(parsed)) {
        problems.push(`${name} must be an ISO 8601 date or time such as 2026-12-01 or 2026-12-01T09:00Z.`);
        return undefined;
      }
      return new Date(parsed).toISOString();
    };
    const filter: CallFilter = {
      agent: filters.agent,
      tool: filters.tool,
      decision: filters.decision === 'allowed' || filters.decision === 'denied' ? filters.decision : undefined,
      outcome: ['ok', 'error', 'pending', 'unknown'].includes(filters.outcome ?? '') ? (filters.outcome as CallFilter['outcome']) : undefined,
      invoiceId: filters.invoice,
      paymentId: filters.payment,
      since: time('since'),
      until: time('until'),
    };
    let before: number | undefined;
    const cursor = get('cursor');
    if (cursor !== undefined) {
      try {
        before = decodeCursor(cursor);
      } catch (error) {
        if (!(error instanceof CursorError)) throw error;
        problems.push('That page link is not one this console made; start from the newest entries.');
      }
    }
    const { entries, nextCursor } = problems.length > 0 ? { entries: [], nextCursor: null } : listCalls(this.deps.db, filter, LOG_PAGE, before);
    this.page(res, problems.length > 0 ? 400 : 200, logPage(viewer, filters, entries, nextCursor, problems.join(' ') || null, this.deps.tools));
  }

  private asset(res: ServerResponse, name: string): void {
    const cached = { 'Cache-Control': 'public, max-age=3600' };
    if (name === 'console.css') return this.send(res, 200, 'text/css; charset=utf-8', CONSOLE_CSS, cached);
    if (name === 'console.js') return this.send(res, 200, 'text/javascript; charset=utf-8', CONSOLE_JS, cached);
    if (name === 'chart.umd.min.js') return this.send(res, 200, 'text/javascript; charset=utf-8', chartLibrary(), cached);
    this.send(res, 404, 'text/plain; charset=utf-8', 'Nothing here.');
  }

  /** An audit event under the person (or nobody, for a sign-in that named no one), never with a token or cookie. */
  private async event(person: string | null, reason: string, message: string, req: IncomingMessage, extra: Record<string, unknown>): Promise<AuditRow> {
    try {
      return await this.deps.audit.appendWhenFree({
        call_id: randomUUID(),
        kind: 'event',
        agent: person === null ? null : `person:${person}`,
        transport: 'console',
        client_name: (req.headers['user-agent'] ?? '').slice(0, 200) || null,
        reason,
        reason_message: message.slice(0, 2000),
        action: 'use the console',
        rule: this.deps.people?.path ?? null,
        policy_sha256: this.deps.people?.current().sha256 || null,
        arguments: JSON.stringify({ ...(person !== null ? { person } : {}), remote_address: req.socket.remoteAddress ?? null, ...extra }),
      });
    } catch (error) {
      this.deps.logger.error({ err: error, reason }, 'Could not write the audit event of a console action');
      throw error;
    }
  }

  private async form(req: IncomingMessage, res: ServerResponse, deadlineMs = 30_000): Promise<Form | null> {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      this.send(res, 415, 'text/plain; charset=utf-8', 'The console takes forms (application/x-www-form-urlencoded) only.');
      return null;
    }
    const timer = setTimeout(() => req.destroy(), deadlineMs);
    try {
      const body = await readBody(req, MAX_FORM_BODY);
      return Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        this.send(res, 413, 'text/plain; charset=utf-8', 'The form is too large.', { Connection: 'close' });
        return null;
      }
      if (req.destroyed) return null;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private secure(req: IncomingMessage): boolean {
    return this.deps.publicUrl?.startsWith('https:') === true || req.headers['x-forwarded-proto'] === 'https';
  }

  private cookieHeader(req: IncomingMessage, name: string, value: string, maxAgeSeconds: number | null): string {
    return [`${name}=${value}`, `Path=${CONSOLE_PATH}`, 'HttpOnly', 'SameSite=Strict', ...(this.secure(req) ? ['Secure'] : []), ...(maxAgeSeconds !== null ? [`Max-Age=${maxAgeSeconds}`] : [])].join('; ');
  }

  private redirect(res: ServerResponse, location: string): void {
    this.send(res, 303, 'text/plain; charset=utf-8', '', { Location: location });
  }

  private page(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    this.send(res, status, 'text/html; charset=utf-8', body, headers);
  }

  private send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string | string[]> = {}): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      // same-origin, not no-referrer: with no-referrer a browser posts forms with "Origin: null", which the origin check refuses.
      'Referrer-Policy': 'same-origin',
      'Cache-Control': 'no-store',
      ...headers,
    });
    res.end(body);
  }
}

/** Every value of the named cookie, in the order the browser sent them. */
function cookies(req: IncomingMessage, name: string): string[] {
  const values: string[] = [];
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) values.push(value.join('='));
  }
  return values;
}
