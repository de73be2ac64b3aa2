/**
 * The policy decision: deny by default, allow only what the agent's policy names. Two steps, because a call's amount
 * may only be known after reading the payment (a refund of "the full remainder"):
 * - authorize(): who is calling, may they use this tool in this mode at all; before anything else happens.
 * - checkCaps(): amounts, daily totals, counts, rate, redirect host, log scope; run inside the transaction that
 *   reserves the amount, so parallel calls see each other's reservations.
 * Neither knows any tool by name: tools declare their capabilities and what a call moves.
 */
import { createHash, timingSafeEqual } from '../crypto-on-demand.js';
import { formatMinorUnits } from '../mollie/money.js';
import type { ApprovalDenial } from '../approvals/approvals.js';
import type { MollieMode } from '../mollie/port.js';
import type { AgentPolicy, PolicySet, ToolCapabilities, ToolPolicy } from './policy.js';

export type DenialReason =
  | 'no_agent'
  | 'unknown_agent'
  | 'token_mismatch'
  | 'tool_not_allowed'
  | 'mode_not_allowed'
  | 'currency_not_allowed'
  | 'per_call_exceeded'
  | 'per_day_exceeded'
  | 'count_per_day_exceeded'
  | 'rate_limit_exceeded'
  | 'redirect_host_not_allowed'
  | 'scope_own'
  | 'approval_required'
  | 'confirmation_declined'
  | 'duplicate_call'
  | 'payment_not_created_here'
  | ApprovalDenial;

export type Decision =
  /** approved / confirmed: allowed because a person said yes (out of band, or in the client). */
  | { allowed: true; reason: 'allowed' | 'approved' | 'confirmed'; rule: string; message: string }
  | { allowed: false; reason: DenialReason; rule: string; message: string };

/** Who is calling, as the transport established it; never taken from tool arguments. */
export interface Caller {
  agent: string | null;
  /** The secret the caller presented (MOLLIE_MCP_TOKEN on stdio), compared by hash, never stored. */
  token: string | null;
}

export interface Authorized {
  decision: Decision;
  agent: AgentPolicy | null;
  tool: ToolPolicy | null;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Constant-time comparison of the presented token's hash with the policy's token_sha256. */
export function tokenMatches(token: string | null, expectedSha256: string): boolean {
  if (token === null) return false;
  const actual = Buffer.from(sha256Hex(token), 'hex');
  const expected = Buffer.from(expectedSha256, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function deny(reason: DenialReason, rule: string, message: string): Decision {
  return { allowed: false, reason, rule, message };
}

export function authorize(policies: PolicySet, caller: Caller, toolName: string, mode: MollieMode): Authorized {
  if (caller.agent === null) {
    return {
      decision: deny('no_agent', 'identity', 'No agent is configured for this connection: set MOLLIE_MCP_AGENT to an agent that has a policy file.'),
      agent: null,
      tool: null,
    };
  }
  const agent = policies.agents.get(caller.agent);
  if (!agent) {
    return {
      decision: deny('unknown_agent', 'deny by default', `Agent "${caller.agent}" has no policy in ${policies.directory}, so every call is denied.`),
      agent: null,
      tool: null,
    };
  }
  if (agent.tokenSha256 !== null && !tokenMatches(caller.token, agent.tokenSha256)) {
    return {
      decision: deny('token_mismatch', `${agent.file}: token_sha256`, `The token presented for agent "${agent.agent}" does not match its policy's token_sha256, so every call is denied; set MOLLIE_MCP_TOKEN to the agent's token.`),
      agent,
      tool: null,
    };
  }
  const tool = agent.tools.get(toolName);
  if (!tool) {
    return {
      decision: deny('tool_not_allowed', `${agent.file}: tools`, `Agent "${agent.agent}" may not use ${toolName}: its policy does not list it.`),
      agent,
      tool: null,
    };
  }
  if (!agent.modes.includes(mode)) {
    return {
      decision: deny('mode_not_allowed', `${agent.file}: modes`, `Agent "${agent.agent}" may not work in Mollie ${mode} mode; its policy allows ${agent.modes.join(', ')}.`),
      agent,
      tool,
    };
  }
  return { decision: { allowed: true, reason: 'allowed', rule: `${agent.file}: tools.${toolName}`, message: `Agent "${agent.agent}" may use ${toolName}.` }, agent, tool };
}

/** What one call asks for, as its tool declared it. */
export interface CallDemand {
  money: { minor: number; currency: string; reuse?: boolean } | null;
  redirectUrl: string | null;
  /** The agent whose audit entries the call reads; null for all agents. */
  readsAgent: string | null | undefined;
}

/** Recent use by this agent, read inside the reserving transaction. */
export interface UsageReader {
  /** Calls that got past the policy in the minute before `now`, by the real clock (rate_limit). */
  recentCalls(agent: string, now: Date): number;
  reservedSince(agent: string, tool: string, currency: string, sinceIso: string): { minor: number; count: number };
  /** What went out in this tool and currency since then without a person's approval (confirm_above). */
  unapprovedSince(agent: string, tool: string, currency: string, sinceIso: string): number;
}

/** The rate limit alone: checked before a call reaches anything, Mollie included. */
export function checkRate(agent: AgentPolicy, usage: Pick<UsageReader, 'recentCalls'>, now: Date): Decision | null {
  if (agent.ratePerMinute === null) return null;
  const recent = usage.recentCalls(agent.agent, now);
  if (recent < agent.ratePerMinute) return null;
  return deny('rate_limit_exceeded', `${agent.file}: rate_limit.per_minute = ${agent.ratePerMinute}`, `Agent "${agent.agent}" has made ${recent} calls in the last minute, its limit is ${agent.ratePerMinute}; wait a minute and try again.`);
}

export function checkCaps(
  agent: AgentPolicy,
  toolName: string,
  capabilities: ToolCapabilities,
  tool: ToolPolicy,
  demand: CallDemand,
  usage: UsageReader,
  now: Date,
): Decision {
  const file = agent.file;
  const limited = checkRate(agent, usage, now);
  if (limited) return limited;
  if (capabilities.readsAuditLog && tool.scope === 'own' && demand.readsAgent !== agent.agent) {
    const whose = demand.readsAgent === null || demand.readsAgent === undefined ? 'every agent' : `agent "${demand.readsAgent}"`;
    return deny('scope_own', `${file}: tools.${toolName}.scope = own`, `Agent "${agent.agent}" may read only its own log entries, not those of ${whose}.`);
  }
  if (capabilities.redirects && demand.redirectUrl !== null) {
    const host = new URL(demand.redirectUrl).hostname;
    if (!tool.redirectHosts.includes(host)) {
      const allowed = tool.redirectHosts.length > 0 ? `allowed: ${tool.redirectHosts.join(', ')}` : 'its policy allows none';
      return deny('redirect_host_not_allowed', `${file}: tools.${toolName}.redirect_hosts`, `The redirect host ${host} is not allowed for agent "${agent.agent}" (${allowed}).`);
    }
  }
  if (capabilities.movesMoney && demand.money !== null) {
    const { minor, currency } = demand.money;
    const caps = tool.limits.get(currency);
    const asked = `${formatMinorUnits(minor, currency)} ${currency}`;
    if (!caps) {
      const listed = [...tool.limits.keys()];
      return deny('currency_not_allowed', `${file}: tools.${toolName}.limits`, `Agent "${agent.agent}" may not use ${toolName} in ${currency}${listed.length > 0 ? `; allowed: ${listed.join(', ')}` : '; its policy lists no currency'}.`);
    }
    const rule = `${file}: tools.${toolName}.limits.${currency}`;
    if (minor > caps.perCall) {
      return deny('per_call_exceeded', `${rule}.per_call = ${formatMinorUnits(caps.perCall, currency)}`, `${asked} is over agent "${agent.agent}"'s per-call limit of ${formatMinorUnits(caps.perCall, currency)} ${currency} for ${toolName}.`);
    }
    if (demand.money.reuse !== true && (caps.perDay !== null || caps.countPerDay !== null)) {
      const used = usage.reservedSince(agent.agent, toolName, currency, new Date(now.getTime() - 86_400_000).toISOString());
      if (caps.countPerDay !== null && used.count + 1 > caps.countPerDay) {
        return deny('count_per_day_exceeded', `${rule}.count_per_day = ${caps.countPerDay}`, `Agent "${agent.agent}" has made ${used.count} ${toolName} calls in ${currency} in the last 24 hours, its limit is ${caps.countPerDay}.`);
      }
      if (caps.perDay !== null && used.minor + minor > caps.perDay) {
        const left = Math.max(0, caps.perDay - used.minor);
        return deny('per_day_exceeded', `${rule}.per_day = ${formatMinorUnits(caps.perDay, currency)}`, `${asked} would take agent "${agent.agent}" over its 24-hour limit of ${formatMinorUnits(caps.perDay, currency)} ${currency} for ${toolName}: ${formatMinorUnits(used.minor, currency)} ${currency} already used, ${formatMinorUnits(left, currency)} ${currency} left.`);
      }
    }
    return { allowed: true, reason: 'allowed', rule: `${rule}.per_call = ${formatMinorUnits(caps.perCall, currency)}`, message: `${asked} is within agent "${agent.agent}"'s limits for ${toolName}.` };
  }
  return { allowed: true, reason: 'allowed', rule: `${file}: tools.${toolName}`, message: `Agent "${agent.agent}" may use ${toolName}.` };
}

/** `payments: this_server`: the agent may act only on payments this server created; checked before Mollie is asked. */
export function checkPaymentScope(agent: AgentPolicy, toolName: string, tool: ToolPolicy, capabilities: ToolCapabilities, paymentId: string | null, createdHere: boolean): Decision | null {
  if (!capabilities.actsOnPayments || tool.payments !== 'this_server' || paymentId === null || createdHere) return null;
  return deny(
    'payment_not_created_here',
    `${agent.file}: tools.${toolName}.payments = this_server`,
    `Agent "${agent.agent}" may use ${toolName} only on payments this server created (a checkout it made, or a payment through one of its pay links); ${paymentId} is not one of them.`,
  );
}

/** Why a person must approve this call, or null when the policy lets it run without one. */
export interface ApprovalRule {
  rule: string;
  message: string;
}

/**
 * `confirm_above` holds over a rolling 24 hours, not per call: a call needs a person when it, together with what this
 * agent moved in the tool and currency without one in the last 24 hours, is over the limit. Otherwise two refunds of
 * 50.00 would move 100.00 past a confirm_above of 50.00 with nobody asked.
 */
export const CONFIRM_WINDOW_MS = 86_400_000;

export function approvalNeeded(
  agent: AgentPolicy,
  toolName: string,
  tool: ToolPolicy,
  money: { minor: number; currency: string; reuse?: boolean } | null,
  usage: Pick<UsageReader, 'unapprovedSince'>,
  now: Date,
): ApprovalRule | null {
  if (tool.confirm) {
    return { rule: `${agent.file}: tools.${toolName}.confirm = true`, message: `Agent "${agent.agent}"'s policy asks a person to approve every ${toolName} call.` };
  }
  if (money === null || money.reuse === true) return null;
  const confirmAbove = tool.limits.get(money.currency)?.confirmAbove ?? null;
  if (confirmAbove === null) return null;
  const limit = `${formatMinorUnits(confirmAbove, money.currency)} ${money.currency}`;
  const rule = `${agent.file}: tools.${toolName}.limits.${money.currency}.confirm_above = ${formatMinorUnits(confirmAbove, money.currency)}`;
  const asked = `${formatMinorUnits(money.minor, money.currency)} ${money.currency}`;
  if (money.minor > confirmAbove) {
    return { rule, message: `${asked} is over ${limit}, above which a person must approve agent "${agent.agent}"'s ${toolName} calls.` };
  }
  const before = usage.unapprovedSince(agent.agent, toolName, money.currency, new Date(now.getTime() - CONFIRM_WINDOW_MS).toISOString());
  if (money.minor + before <= confirmAbove) return null;
  return {
    rule: `${rule} (over 24 hours)`,
    message: `${asked} would bring what agent "${agent.agent}" moved with ${toolName} in the last 24 hours without a person's approval to ${formatMinorUnits(money.minor + before, money.currency)} ${money.currency}, over ${limit}: a person must approve it.`,
  };
}
