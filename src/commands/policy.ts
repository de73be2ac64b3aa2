/** `policy check` and `policy explain`: what the policies allow, before an agent finds out the hard way. */
import { formatMinorUnits, isMollieCurrency, MoneyError, parseAmount } from '../mollie/money.js';
import type { MollieMode } from '../mollie/port.js';
import { approvalNeeded, authorize, checkCaps, type UsageReader } from '../policy/decide.js';
import { loadPolicies, PolicyError } from '../policy/load-policies.js';
import type { AgentPolicy, PolicySet } from '../policy/policy.js';
import { TOOL_CAPABILITIES } from '../../tools/index.js';
import { UsageError, type CommandOutput } from './output.js';
import { checkApprovers } from '../people/approver-check.js';
import { loadPeople, PeopleError, type PeopleSet } from '../people/load-people.js';

function load(directory: string, io: CommandOutput): PolicySet | null {
  try {
    return loadPolicies(directory, TOOL_CAPABILITIES);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    io.err(`Policy problems in ${directory}:`);
    for (const line of error.message.split('\n')) io.err(`  ${line}`);
    return null;
  }
}

function toolCell(agent: AgentPolicy, tool: string): string {
  const policy = agent.tools.get(tool);
  if (!policy) return '-';
  const capabilities = TOOL_CAPABILITIES.find((item) => item.name === tool);
  if (capabilities?.movesMoney) {
    if (policy.limits.size === 0) return 'no currency';
    const approvals = policy.approvers !== null || policy.approvalsNeeded > 1 ? ` ${policy.approvalsNeeded} of ${policy.approvers ? policy.approvers.join(',') : 'approvers'}` : '';
    const cells = [...policy.limits].map(([currency, caps]) => {
      const asks = policy.confirm ? ` (approval${approvals})` : caps.confirmAbove !== null ? ` (>${formatMinorUnits(caps.confirmAbove, currency)}: approval${approvals})` : '';
      return `${currency}<=${formatMinorUnits(caps.perCall, currency)}${asks}`;
    });
    return cells.join(' ');
  }
  if (capabilities?.readsAuditLog) return `scope ${policy.scope}`;
  return 'yes';
}

export function policyCheck(directory: string, io: CommandOutput, peopleFile: string | null = null): number {
  const policies = load(directory, io);
  if (!policies) return 1;
  let people: PeopleSet | null = null;
  if (peopleFile !== null) {
    try {
      people = loadPeople(peopleFile);
    } catch (error) {
      if (!(error instanceof PeopleError)) throw error;
      io.err(`People file problems in ${peopleFile}:`);
      for (const line of error.message.split('\n')) io.err(`  ${line}`);
      return 1;
    }
  }
  const approverProblems = checkApprovers(policies, people);
  if (approverProblems.length > 0) {
    io.err(`Approver problems in ${directory}${people ? ` with ${people.file}` : ''}:`);
    for (const line of new PolicyError(approverProblems).message.split('\n')) io.err(`  ${line}`);
    return 1;
  }
  if (policies.agents.size === 0) {
    io.err(`No policy files (*.yaml) in ${directory}: every call would be denied. See policies/README.md to write one.`);
    return 1;
  }
  const tools = TOOL_CAPABILITIES.map((tool) => tool.name);
  const agents = [...policies.agents.values()];
  const rows = [['agent', ...tools], ...agents.map((agent) => [agent.agent, ...tools.map((tool) => toolCell(agent, tool))])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) io.out(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
  io.out('');
  io.out(`OK: ${agents.length} agent${agents.length === 1 ? '' : 's'} in ${directory}, every file valid.`);
  if (people) {
    const named = [...people.people.values()].map((person) => `${person.name} (${person.roles.join(', ')})`);
    io.out(`People: ${named.join(', ') || 'nobody'} in ${people.file}.`);
  }
  return 0;
}

const NO_USAGE: UsageReader = { recentCalls: () => 0, reservedSince: () => ({ minor: 0, count: 0 }), unapprovedSince: () => 0 };

export function policyExplain(
  directory: string,
  request: { agent: string; tool: string; amount?: string | undefined; mode?: string | undefined },
  io: CommandOutput,
): number {
  const policies = load(directory, io);
  if (!policies) return 1;
  const capabilities = TOOL_CAPABILITIES.find((tool) => tool.name === request.tool);
  if (!capabilities) throw new UsageError(`There is no tool "${request.tool}"; the tools are ${TOOL_CAPABILITIES.map((tool) => tool.name).join(', ')}.`);
  const mode = (request.mode ?? 'test') as MollieMode;
  if (mode !== 'test' && mode !== 'live') throw new UsageError('--mode must be test or live.');
  let money: { minor: number; currency: string } | null = null;
  if (request.amount !== undefined) {
    const match = /^(\S+)\s+([A-Z]{3})$/.exec(request.amount.trim());
    if (!match || !isMollieCurrency(match[2])) throw new UsageError(`--amount must look like "12.50 EUR"; got "${request.amount}".`);
    try {
      money = { minor: parseAmount(match[1], match[2]!), currency: match[2]! };
    } catch (error) {
      if (error instanceof MoneyError) throw new UsageError(`--amount: ${error.message}`);
      throw error;
    }
    if (!capabilities.movesMoney) io.err(`Note: ${request.tool} moves no money, so the amount plays no part in its decision.`);
  }

  const agent = policies.agents.get(request.agent);
  // The token is checked when the agent calls; here the question is what its policy allows.
  const withoutToken: PolicySet = agent ? { ...policies, agents: new Map([[agent.agent, { ...agent, tokenSha256: null }]]) } : policies;
  const authorized = authorize(withoutToken, { agent: request.agent, token: null }, request.tool, mode);
  let decision = authorized.decision;
  if (decision.allowed && authorized.agent && authorized.tool) {
    decision = checkCaps(authorized.agent, request.tool, capabilities, authorized.tool, { money, redirectUrl: null, readsAgent: request.agent }, NO_USAGE, new Date());
  }
  io.out(`agent:    ${request.agent}${agent ? ` (${agent.file})` : ''}`);
  io.out(`tool:     ${request.tool}`);
  io.out(`mode:     ${mode}`);
  if (money) io.out(`amount:   ${formatMinorUnits(money.minor, money.currency)} ${money.currency}`);
  io.out(`decision: ${decision.allowed ? 'allowed' : 'denied'}`);
  io.out(`reason:   ${decision.reason}`);
  io.out(`rule:     ${decision.rule}`);
  io.out(`why:      ${decision.message}`);
  if (capabilities.movesMoney && money === null && decision.allowed) io.out('note:     no --amount given; every call is also checked against the per-call cap of its currency.');
  const tool = authorized.tool;
  if (decision.allowed && authorized.agent && tool && capabilities.approvable) {
    const approval = approvalNeeded(authorized.agent, request.tool, tool, money, NO_USAGE, new Date());
    if (approval) {
      io.out(`approval: a person must approve it first (${approval.rule}): ${approval.message}`);
      if (tool.approvers !== null || tool.approvalsNeeded > 1) {
        io.out(`          ${tool.approvalsNeeded} different ${tool.approvalsNeeded === 1 ? 'person' : 'people'} from ${tool.approvers ? tool.approvers.join(', ') : 'every approver in the people file'} must approve it, in the console or with \`mollie-invoice-mcp approve <approval_id> --as NAME\` (a people file is needed: MOLLIE_MCP_PEOPLE); then the agent's repeat goes through once.`);
      } else {
        io.out('          In a client that can show a prompt, the person there is asked (unless a people file names the approvers); otherwise the call fails with approval_required and `mollie-invoice-mcp approve <approval_id>` (with a people file: `--as NAME`, or the console) lets it through once.');
      }
    } else {
      const thresholds = [...tool.limits.entries()].filter(([, caps]) => caps.confirmAbove !== null).map(([currency, caps]) => `${formatMinorUnits(caps.confirmAbove!, currency)} ${currency}`);
      io.out(`approval: ${thresholds.length > 0 ? `not needed${money ? '' : ' without an amount'}; needed above ${thresholds.join(', ')} (confirm_above)` : 'not needed (no confirm or confirm_above in this policy)'}`);
    }
  }
  if (decision.allowed && agent && tool) {
    const later: string[] = [];
    const caps = money ? tool.limits.get(money.currency) : undefined;
    if (caps?.perDay != null) later.push(`per_day ${formatMinorUnits(caps.perDay, money!.currency)} ${money!.currency} over a rolling 24 hours`);
    if (caps?.countPerDay != null) later.push(`count_per_day ${caps.countPerDay}`);
    if (agent.ratePerMinute !== null) later.push(`rate_limit ${agent.ratePerMinute} calls per minute`);
    if (capabilities.redirects && tool.redirectHosts.length > 0) later.push(`redirect_url hosts ${tool.redirectHosts.join(', ')}`);
    if (agent.tokenSha256 !== null) later.push('the token must match token_sha256');
    if (later.length > 0) io.out(`also at call time: ${later.join('; ')}.`);
  }
  return 0;
}
