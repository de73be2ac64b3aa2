/** The console's pages, as HTML. Every value from the log or a person is escaped by `html`; nothing here decides. */
import { approverNames, formatUtc, type Approval } from '../approvals/approvals.js';
import type { CallEntry } from '../audit/call-entries.js';
import type { Story, StoryEntry } from '../audit/story.js';
import type { Figures } from './console-figures.js';
import { html, jsonBlock, type Html } from './html.js';

export const CONSOLE_PATH = '/console';

export interface Viewer {
  name: string;
  roles: readonly string[];
  csrf: string;
}

type Section = 'approvals' | 'log' | 'story' | 'charts';

export function layout(title: string, body: Html, viewer: Viewer | null, here: Section | null, flash: { kind: string; text: string } | null = null, scripts: string[] = []): string {
  const auditor = viewer?.roles.includes('auditor') ?? false;
  const link = (section: Section, label: string): Html => html`<a href="${CONSOLE_PATH}/${section}" class="${here === section ? 'here' : ''}">${label}</a>`;
  const nav = viewer
    ? html`<nav>${link('approvals', 'Approvals')}${auditor ? [link('log', 'Log'), link('story', 'Story'), link('charts', 'Charts')] : []}</nav>
      <span class="who">Signed in as <strong>${viewer.name}</strong> (${viewer.roles.join(', ')})</span>
      <form method="post" action="${CONSOLE_PATH}/sign-out"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Sign out</button></form>`
    : html`<nav></nav>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} - mollie-invoice-mcp console</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="${CONSOLE_PATH}/assets/console.css"></head>
<body><header><span class="brand">mollie-invoice-mcp console</span>${nav}</header>
<main>${flash ? html`<div class="flash ${flash.kind}" role="status">${flash.text}</div>` : ''}${body}</main>
${scripts.map((src) => html`<script src="${src}"></script>`)}
</body></html>`.text;
}

export function signInPage(csrf: string, message: { kind: string; text: string } | null): string {
  return layout(
    'Sign in',
    html`<div class="card signin"><h1>Sign in</h1>
<p class="muted">With the personal token your administrator gave you (made with <span class="mono">token create --person NAME</span>, its hash in the people file).</p>
<form method="post" action="${CONSOLE_PATH}/sign-in" autocomplete="off">
<input type="hidden" name="csrf" value="${csrf}">
<label for="token">Personal token</label>
<input type="password" id="token" name="token" required autofocus>
<button type="submit" class="primary">Sign in</button></form></div>`,
    null,
    null,
    message,
  );
}

export function noPeoplePage(): string {
  return layout(
    'Console off',
    html`<div class="card"><h1>The console needs a people file</h1>
<p>Start the server with <span class="mono">MOLLIE_MCP_PEOPLE</span> naming the people who approve and audit, each with the token_sha256 of
their personal token (<span class="mono">mollie-invoice-mcp token create --person NAME</span>). See docs/console.md.</p></div>`,
    null,
    null,
  );
}

function money(amount: { value: string; currency: string | null } | null): string {
  return amount ? `${amount.value}${amount.currency ? ` ${amount.currency}` : ''}` : '-';
}

function storyLink(id: string | null, viewer: Viewer): Html | string {
  if (id === null) return '-';
  return viewer.roles.includes('auditor') ? html`<a href="${CONSOLE_PATH}/story?id=${encodeURIComponent(id)}" class="mono">${id}</a>` : html`<span class="mono">${id}</span>`;
}

export interface ApprovalView {
  approval: Approval;
  /** Whether the viewer may decide it now: an approver the policy names, who has not decided yet. */
  mayDecide: boolean;
  /** Why not, when the viewer is an approver but may not. */
  why: string | null;
  eligible: readonly string[];
}

export function approvalsPage(viewer: Viewer, pending: readonly ApprovalView[], recent: readonly Approval[], flash: { kind: string; text: string } | null): string {
  const card = ({ approval, mayDecide, why, eligible }: ApprovalView): Html => {
    const given = approverNames(approval);
    return html`<section class="card approval" id="${approval.approvalId}" data-approval="${approval.approvalId}">
<h3>${approval.agent} wants to ${approval.action} <span class="badge ${approval.state}">${approval.state === 'approved' ? 'approved, not used yet' : 'waiting'}</span></h3>
<dl class="facts">
<dt>Agent</dt><dd>${approval.agent}</dd>
<dt>Tool</dt><dd class="mono">${approval.tool}</dd>
<dt>Amount</dt><dd>${money(approval.amount)}</dd>
<dt>Payment</dt><dd>${storyLink(approval.paymentId, viewer)}</dd>
<dt>Invoice</dt><dd>${storyLink(approval.invoiceId, viewer)}</dd>
<dt>Rule that asked</dt><dd class="mono">${approval.rule ?? '-'}</dd>
<dt>Approvals needed</dt><dd>${approval.needed} from ${eligible.length > 0 ? eligible.join(', ') : 'nobody (no approver may)'}</dd>
<dt>Approved so far by</dt><dd class="approved-by">${given.length > 0 ? given.join(', ') : 'nobody yet'}</dd>
<dt>Asked</dt><dd>${formatUtc(approval.askedAt)} by call <span class="mono">${approval.askedCallId}</span></dd>
<dt>Expires</dt><dd>${formatUtc(approval.expiresAt)}</dd>
<dt>Approval id</dt><dd class="mono">${approval.approvalId}</dd>
</dl>
${
  mayDecide
    ? html`<form method="post" action="${CONSOLE_PATH}/approvals/${approval.approvalId}">
<input type="hidden" name="csrf" value="${viewer.csrf}">
<label class="muted" for="note-${approval.approvalId}">Note (optional, goes into the audit log)</label>
<textarea id="note-${approval.approvalId}" name="note" maxlength="500"></textarea>
<div class="actions"><button type="submit" name="decision" value="approve" class="approve">Approve</button>
<button type="submit" name="decision" value="reject" class="reject">Reject</button></div></form>`
    : html`<p class="muted">${why ?? 'Only approvers can approve or reject.'}</p>`
}</section>`;
  };
  const row = (approval: Approval): Html => html`<tr data-approval="${approval.approvalId}"><td>${formatUtc(approval.askedAt)}</td><td>${approval.agent}</td><td>${approval.action}</td>
<td><span class="badge ${approval.state}">${approval.state}</span></td><td>${approval.state === 'rejected' ? approval.decidedBy ?? '-' : approverNames(approval).join(', ') || '-'}</td>
<td class="mono">${approval.approvalId}</td></tr>`;
  return layout(
    'Approvals',
    html`<h1>Waiting for approval</h1>
${pending.length === 0 ? html`<p class="muted">Nothing is waiting for a person.</p>` : pending.map(card)}
<h2>Decided, used or expired in the last 7 days</h2>
${recent.length === 0 ? html`<p class="muted">None.</p>` : html`<table><thead><tr><th>Asked</th><th>Agent</th><th>What</th><th>State</th><th>By</th><th>Approval</th></tr></thead><tbody>${recent.map(row)}</tbody></table>`}`,
    viewer,
    'approvals',
    flash,
  );
}

export interface LogFilters {
  agent?: string | undefined;
  tool?: string | undefined;
  decision?: string | undefined;
  outcome?: string | undefined;
  invoice?: string | undefined;
  payment?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

export function logPage(viewer: Viewer, filters: LogFilters, entries: readonly CallEntry[], nextCursor: string | null, problem: string | null, tools: readonly string[]): string {
  const text = (name: keyof LogFilters, label: string, placeholder = ''): Html =>
    html`<label>${label}<input type="text" name="${name}" value="${filters[name] ?? ''}" placeholder="${placeholder}"></label>`;
  const choice = (name: keyof LogFilters, label: string, options: readonly string[]): Html =>
    html`<label>${label}<select name="${name}"><option value="">any</option>${options.map((option) => html`<option value="${option}"${filters[name] === option ? html` selected` : ''}>${option}</option>`)}</select></label>`;
  const next = new URLSearchParams(Object.entries(filters).filter((pair): pair is [string, string] => typeof pair[1] === 'string' && pair[1] !== ''));
  if (nextCursor) next.set('cursor', nextCursor);
  return layout(
    'Log',
    html`<h1>Audit log</h1>
<form class="filters" method="get" action="${CONSOLE_PATH}/log">
${text('agent', 'Agent')}${choice('tool', 'Tool', tools)}${choice('decision', 'Decision', ['allowed', 'denied'])}${choice('outcome', 'Outcome', ['ok', 'error', 'pending', 'unknown'])}
${text('invoice', 'Invoice')}${text('payment', 'Payment', 'tr_... or pl_...')}${text('since', 'Since', '2026-12-01')}${text('until', 'Until', '2026-12-02T12:00Z')}
<button type="submit">Filter</button></form>
${problem ? html`<div class="flash error">${problem}</div>` : ''}
${
  entries.length === 0
    ? html`<p class="muted">No calls recorded that match.</p>`
    : html`<table class="log"><thead><tr><th>Time (UTC)</th><th>Agent</th><th>Tool</th><th>Decision</th><th>Outcome</th><th class="num">Amount</th><th>What happened</th><th>Rule</th></tr></thead><tbody>
${entries.map(
  (entry) => html`<tr><td>${entry.at.slice(0, 19).replace('T', ' ')}</td><td>${entry.agent ?? '-'}</td><td class="mono">${entry.tool ?? '-'}</td>
<td><span class="badge ${entry.decision}">${entry.decision}</span></td><td><span class="badge ${entry.outcome}">${entry.outcome}</span></td>
<td class="num">${entry.amount ? `${entry.amount.value} ${entry.amount.currency}` : (entry.amount_asked ?? '')}</td>
<td>${entry.summary}${entry.payment_id ? html` <a href="${CONSOLE_PATH}/story?id=${encodeURIComponent(entry.payment_id)}">story</a>` : entry.invoice_id ? html` <a href="${CONSOLE_PATH}/story?id=${encodeURIComponent(entry.invoice_id)}">story</a>` : ''}</td>
<td class="mono">${entry.rule ?? ''}</td></tr>`,
)}</tbody></table>`
}
${nextCursor ? html`<p><a class="button" href="${CONSOLE_PATH}/log?${next.toString()}">Older entries</a></p>` : ''}`,
    viewer,
    'log',
  );
}

function storyItem(entry: StoryEntry): Html {
  const mollie = entry.mollie_error;
  return html`<li class="${entry.kind}" data-seq="${entry.seq}">
<div><strong>${entry.at.slice(0, 19).replace('T', ' ')} UTC</strong> &middot; ${entry.actor ?? 'unknown'}${entry.tool ? html` &middot; <span class="mono">${entry.tool}</span>` : ''}
${entry.decision ? html` &middot; <span class="badge ${entry.decision}">${entry.decision}</span>` : ''}${entry.outcome ? html` <span class="badge ${entry.outcome}">${entry.outcome}</span>` : ''}</div>
<div>${entry.summary}</div>
<dl class="facts">
${entry.reason ? html`<dt>Reason</dt><dd>${entry.reason}</dd>` : ''}
${entry.rule ? html`<dt>Rule</dt><dd class="mono">${entry.rule}</dd>` : ''}
${entry.policy_sha256 ? html`<dt>Policy file sha256</dt><dd class="mono">${entry.policy_sha256}</dd>` : ''}
${entry.approvers.length > 0 ? html`<dt>Approvers</dt><dd class="approvers">${entry.approvers.join(', ')}</dd>` : ''}
${entry.amount ? html`<dt>Amount</dt><dd>${money(entry.amount)}</dd>` : ''}
${entry.result ? html`<dt>Result</dt><dd>${entry.result}</dd>` : ''}
${entry.error_message ? html`<dt>Error</dt><dd>${entry.error_code ?? ''} ${entry.error_message}</dd>` : ''}
${mollie ? html`<dt>Mollie answered</dt><dd>${[mollie.status, mollie.title, mollie.detail, mollie.field ? `field ${mollie.field}` : null].filter((part) => part !== null).join(' · ')}</dd>` : ''}
</dl></li>`;
}

export function storyPage(viewer: Viewer, id: string, story: Story | null, problem: string | null): string {
  const form = html`<form class="filters" method="get" action="${CONSOLE_PATH}/story"><label>Payment, payment link or invoice<input type="text" name="id" value="${id}" placeholder="tr_..., pl_... or an invoice id" required></label><button type="submit">Show the story</button></form>`;
  if (story === null) {
    return layout('Story', html`<h1>The story of a payment or invoice</h1>${form}${problem ? html`<div class="flash error">${problem}</div>` : ''}`, viewer, 'story');
  }
  const what = story.kind === 'invoice' ? 'invoice' : story.kind === 'payment_link' ? 'payment link' : 'payment';
  return layout(
    `Story of ${id}`,
    html`<h1>The story of ${what} <span class="mono">${id}</span></h1>${form}
<div class="card"><dl class="facts">
<dt>Invoice</dt><dd>${story.invoice_id ?? '-'}</dd>
<dt>Payment links</dt><dd class="mono">${story.payment_link_ids.join(', ') || '-'}</dd>
<dt>Payments</dt><dd class="mono">${story.payment_ids.join(', ') || '-'}</dd>
<dt>Approved by</dt><dd class="story-approvers">${story.approvers.join(', ') || 'nobody'}</dd>
<dt>Entries</dt><dd>${story.entries.length}</dd></dl></div>
<ol class="story">${story.entries.map(storyItem)}</ol>`,
    viewer,
    'story',
  );
}

export function chartsPage(viewer: Viewer, figures: Figures, flash: { kind: string; text: string } | null): string {
  const chain = figures.chain;
  return layout(
    'Charts',
    html`<h1>The last ${figures.days.length} days</h1>
${figures.money.length === 0 ? html`<p class="muted">No money moved in the last ${figures.days.length} days.</p>` : ''}
${figures.money.map((series, index) => html`<h2>Money per agent per day, ${series.currency}: pay links issued and refunds</h2><div class="chart"><canvas data-chart="money:${index}" aria-label="Money moved per agent per day in ${series.currency}"></canvas></div>`)}
<h2>Denied calls per day, and calls that waited for an approval</h2><div class="chart"><canvas data-chart="denials" aria-label="Denied calls per day"></canvas></div>
<h2>The hash chain</h2>
<div class="card"><dl class="facts">
<dt>Rows</dt><dd class="chain-rows">${chain.rows}</dd>
<dt>Last row</dt><dd>${chain.headAt ? formatUtc(chain.headAt) : '-'}</dd>
<dt>Head hash</dt><dd class="mono">${chain.headHash ?? '-'}</dd>
<dt>Last verified</dt><dd class="last-verify">${chain.lastVerify ? `${formatUtc(chain.lastVerify.at)} by ${chain.lastVerify.by}: ${chain.lastVerify.result}` : 'never from the console'}</dd>
</dl>
<form method="post" action="${CONSOLE_PATH}/verify"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Verify the chain now</button></form></div>
${jsonBlock('chart-data', figures)}`,
    viewer,
    'charts',
    flash,
    [`${CONSOLE_PATH}/assets/chart.umd.min.js`, `${CONSOLE_PATH}/assets/console.js`],
  );
}

export function forbiddenPage(viewer: Viewer, text: string): string {
  return layout('Not allowed', html`<div class="flash error">${text}</div>`, viewer, null);
}
