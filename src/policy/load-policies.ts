/**
 * Reads `policies/*.yaml` strictly. Any problem (an unknown key, a malformed amount, a duplicate agent) is reported
 * with the file, the line and what to write instead, and the whole set is refused: a half-understood policy would
 * grant something nobody meant to grant.
 */
import { createHash } from '../crypto-on-demand.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatMinorUnits, isMollieCurrency, MoneyError, parseAmount } from '../mollie/money.js';
import type { AgentPolicy, CurrencyLimits, PolicySet, ToolCapabilities, ToolPolicy } from './policy.js';
import { describeIssue, lineOfPath, nodeAt } from './yaml-lines.js';

export interface PolicyProblem {
  file: string;
  line: number | null;
  message: string;
}

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(readonly problems: readonly PolicyProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

export function formatProblem(problem: PolicyProblem): string {
  return `${problem.file}${problem.line !== null ? `:${problem.line}` : ''}: ${problem.message}`;
}

export const AGENT_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Actors the server itself writes into the audit log; no policy may take their name. */
export const RESERVED_ACTORS: ReadonlySet<string> = new Set(['mollie-webhook', 'server']);

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const currencyLimitsSchema = z.strictObject({
  per_call: z.unknown(),
  per_day: z.unknown().optional(),
  count_per_day: z.number().int().positive().max(1_000_000).optional(),
  confirm_above: z.unknown().optional(),
});

const toolPolicySchema = z.strictObject({
  limits: z.record(z.string(), currencyLimitsSchema).optional(),
  redirect_hosts: z.array(z.string().regex(HOSTNAME, 'must be a lower-case host name such as pay.example.com')).optional(),
  scope: z.enum(['own', 'all']).optional(),
  confirm: z.boolean().optional(),
  approvers: z.array(z.string().regex(AGENT_ID, 'must be names from the people file (MOLLIE_MCP_PEOPLE)')).min(1).optional(),
  approvals_needed: z.number().int().min(1).max(5).optional(),
  payments: z.enum(['this_server', 'any']).optional(),
});

const policyFileSchema = z.strictObject({
  agent: z.string().regex(AGENT_ID, 'must be 1-64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit'),
  description: z.string().max(500).optional(),
  token_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits, as printed by `mollie-invoice-mcp token create`').optional(),
  modes: z.array(z.enum(['test', 'live'])).min(1).optional(),
  rate_limit: z.strictObject({ per_minute: z.number().int().positive().max(100_000) }).optional(),
  confirm_in_client: z.boolean().optional(),
  tools: z.record(z.string(), toolPolicySchema.nullable()),
});

type PolicyFile = z.infer<typeof policyFileSchema>;

export function listPolicyFiles(directory: string): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch (error) {
    throw new PolicyError([
      { file: directory, line: null, message: `cannot read the policies directory (${(error as NodeJS.ErrnoException).code ?? 'error'}); set MOLLIE_MCP_POLICIES or --policies to the folder holding the *.yaml policy files.` },
    ]);
  }
  return names
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(directory, name))
    .filter((path) => statSync(path).isFile());
}

/** Loads and validates every policy file in `directory`; throws a PolicyError listing every problem found. */
export function loadPolicies(directory: string, tools: readonly ToolCapabilities[]): PolicySet {
  const { set, problems } = loadEachFile(directory, tools, null);
  if (problems.length > 0) throw new PolicyError(problems);
  return set;
}

/**
 * While serving, an edit applies file by file: a valid file applies at once, a removed file removes its agent at once,
 * and a broken file keeps that agent's last good policy (or none, for a file that never was valid). A typo in one file
 * therefore never holds back another agent's revocation or narrowing. `problems` lists what is broken.
 */
export function reloadPolicies(directory: string, tools: readonly ToolCapabilities[], previous: PolicySet): { set: PolicySet; problems: PolicyProblem[] } {
  return loadEachFile(directory, tools, previous);
}

function loadEachFile(directory: string, tools: readonly ToolCapabilities[], previous: PolicySet | null): { set: PolicySet; problems: PolicyProblem[] } {
  const absolute = resolve(directory);
  const problems: PolicyProblem[] = [];
  const agents = new Map<string, AgentPolicy>();
  const lastGood = new Map([...(previous?.agents.values() ?? [])].map((agent) => [agent.file, agent]));
  const keepLastGood = (file: string): void => {
    const kept = lastGood.get(file);
    if (kept && !agents.has(kept.agent)) agents.set(kept.agent, kept);
  };
  for (const path of listPolicyFiles(absolute)) {
    const file = displayPath(path);
    const source = readFileSync(path);
    const before = problems.length;
    const policy = parsePolicyFile(file, source.toString('utf8'), tools, problems);
    if (!policy) {
      if (problems.length > before) keepLastGood(file);
      continue;
    }
    const earlier = agents.get(policy.agent);
    if (earlier) {
      problems.push({ file, line: policy.line, message: `agent "${policy.agent}" is already defined in ${earlier.file}; each agent has exactly one policy file.` });
      keepLastGood(file);
      continue;
    }
    const sharing = policy.value.tokenSha256 === null ? undefined : [...agents.values()].find((other) => other.tokenSha256 === policy.value.tokenSha256);
    if (sharing) {
      // Over HTTP the token alone names the agent: two agents with one token would make identity a guess.
      problems.push({ file, line: policy.line, message: `token_sha256 is the same as agent "${sharing.agent}"'s in ${sharing.file}; give each agent its own token (\`mollie-invoice-mcp token create --agent ${policy.agent}\`).` });
      keepLastGood(file);
      continue;
    }
    let sha256: string | undefined;
    // Hashed when first asked for (the first call's decision row, a reload): starting a server hashes nothing.
    agents.set(policy.agent, {
      ...policy.value,
      file,
      get sha256(): string {
        sha256 ??= createHash('sha256').update(source).digest('hex');
        return sha256;
      },
    });
  }
  return { set: { directory: absolute, agents }, problems };
}

function displayPath(path: string): string {
  const relative = path.startsWith(process.cwd() + '/') ? path.slice(process.cwd().length + 1) : path;
  return relative;
}

function parsePolicyFile(
  file: string,
  text: string,
  tools: readonly ToolCapabilities[],
  problems: PolicyProblem[],
): { agent: string; line: number; value: Omit<AgentPolicy, 'file' | 'sha256'> } | null {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number | null => (offset === undefined ? null : lines.linePos(offset).line);
  if (doc.errors.length > 0) {
    for (const error of doc.errors) problems.push({ file, line: lineOf(error.pos[0]), message: `not valid YAML: ${error.message.split('\n')[0]}` });
    return null;
  }
  const before = problems.length;
  const raw: unknown = doc.toJS();
  const parsed = policyFileSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const present = nodeAt(doc, issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part))) !== null;
      problems.push({ file, line: lineOfPath(doc, issue, lineOf), message: describeIssue(issue, present) });
    }
    return null;
  }
  const data: PolicyFile = parsed.data;
  const at = (path: readonly (string | number)[]): number | null => lineOf(nodeAt(doc, path)?.range?.[0]);
  const problem = (path: readonly (string | number)[], message: string): void => {
    problems.push({ file, line: at(path), message });
  };

  if (RESERVED_ACTORS.has(data.agent)) problem(['agent'], `"${data.agent}" is reserved for the server's own audit entries; choose another agent name.`);

  const known = new Map(tools.map((tool) => [tool.name, tool]));
  const toolPolicies = new Map<string, ToolPolicy>();
  for (const [name, entry] of Object.entries(data.tools)) {
    const tool = known.get(name);
    if (!tool) {
      problem(['tools', name], `unknown tool "${name}"; the tools are ${[...known.keys()].join(', ')}.`);
      continue;
    }
    const settings = entry ?? {};
    if (settings.limits !== undefined && !tool.movesMoney) problem(['tools', name, 'limits'], `${name} moves no money, so "limits" does not apply to it; remove it.`);
    if (settings.redirect_hosts !== undefined && !tool.redirects) problem(['tools', name, 'redirect_hosts'], `${name} takes no redirect URL, so "redirect_hosts" does not apply to it; remove it.`);
    if (settings.scope !== undefined && !tool.readsAuditLog && !tool.withdrawsLinks) problem(['tools', name, 'scope'], `${name} neither reads the audit log nor withdraws pay links, so "scope" does not apply to it; remove it.`);
    if (settings.payments !== undefined && !tool.actsOnPayments) problem(['tools', name, 'payments'], `${name} does not act on a payment named by the agent, so "payments" does not apply to it; remove it.`);
    const approvableTools = known.size > 0 ? [...known.values()].filter((candidate) => candidate.approvable).map((candidate) => candidate.name).join(', ') : 'none';
    if (settings.confirm !== undefined && !tool.approvable) {
      problem(['tools', name, 'confirm'], `${name} cannot wait for a person's approval, so "confirm" does not apply to it (it applies to: ${approvableTools}); remove it.`);
    }
    for (const key of ['approvers', 'approvals_needed'] as const) {
      if (settings[key] !== undefined && !tool.approvable) {
        problem(['tools', name, key], `${name} cannot wait for a person's approval, so "${key}" does not apply to it (it applies to: ${approvableTools}); remove it.`);
      } else if (settings[key] !== undefined && settings.confirm !== true && !Object.values(settings.limits ?? {}).some((caps) => caps.confirm_above !== undefined)) {
        problem(['tools', name, key], `"${key}" has no effect without confirm: true or a confirm_above limit: nothing asks a person to approve ${name} calls. Add one of them, or remove it.`);
      }
    }
    if (settings.approvers !== undefined && new Set(settings.approvers).size !== settings.approvers.length) {
      problem(['tools', name, 'approvers'], 'a person is named twice in approvers.');
    }
    if (settings.approvers !== undefined && settings.approvals_needed !== undefined && settings.approvals_needed > settings.approvers.length) {
      problem(['tools', name, 'approvals_needed'], `approvals_needed is ${settings.approvals_needed} but approvers names only ${settings.approvers.length}, so no call could ever be approved; name more approvers or lower it.`);
    }
    const limits = new Map<string, CurrencyLimits>();
    for (const [currency, caps] of Object.entries(settings.limits ?? {})) {
      const path = ['tools', name, 'limits', currency];
      if (!isMollieCurrency(currency)) {
        problem(path, `"${currency}" is not a currency Mollie accepts; use an upper-case ISO 4217 code such as EUR.`);
        continue;
      }
      const perCall = policyAmount(caps.per_call, currency, [...path, 'per_call'], problem);
      const perDay = caps.per_day === undefined ? null : policyAmount(caps.per_day, currency, [...path, 'per_day'], problem);
      const confirmAbove = caps.confirm_above === undefined ? null : policyAmount(caps.confirm_above, currency, [...path, 'confirm_above'], problem);
      if (perCall === null || (caps.per_day !== undefined && perDay === null) || (caps.confirm_above !== undefined && confirmAbove === null)) continue;
      if (confirmAbove !== null && !tool.approvable) {
        problem([...path, 'confirm_above'], `${name} cannot wait for a person's approval, so "confirm_above" does not apply to it (it applies to: ${approvableTools}); remove it.`);
      } else if (confirmAbove !== null && settings.confirm === true) {
        problem([...path, 'confirm_above'], `confirm: true already asks a person about every ${name} call, so confirm_above has no effect; remove one of them.`);
      } else if (confirmAbove !== null && confirmAbove >= perCall) {
        problem([...path, 'confirm_above'], `confirm_above ${formatMinorUnits(confirmAbove, currency)} is not below per_call ${formatMinorUnits(perCall, currency)}, so no allowed call could ever need approval. Lower confirm_above, or use confirm: true.`);
      }
      if (perDay !== null && perDay < perCall) {
        problem([...path, 'per_day'], `per_day ${formatMinorUnits(perDay, currency)} is below per_call ${formatMinorUnits(perCall, currency)}; a single call could never use the per-call cap. Raise per_day or lower per_call.`);
      }
      limits.set(currency, { perCall, perDay, countPerDay: caps.count_per_day ?? null, confirmAbove });
    }
    toolPolicies.set(name, {
      limits,
      redirectHosts: settings.redirect_hosts ?? [],
      scope: settings.scope ?? 'own',
      confirm: settings.confirm ?? false,
      approvers: settings.approvers ?? null,
      approvalsNeeded: settings.approvals_needed ?? 1,
      approversLine: at(['tools', name, settings.approvers !== undefined ? 'approvers' : 'approvals_needed']) ?? at(['tools', name]),
      payments: settings.payments ?? 'any',
    });
  }
  if (problems.length > before) return null;
  return {
    agent: data.agent,
    line: at(['agent']) ?? 1,
    value: {
      agent: data.agent,
      description: data.description ?? null,
      tokenSha256: data.token_sha256 ?? null,
      modes: data.modes ?? ['test'],
      ratePerMinute: data.rate_limit?.per_minute ?? null,
      confirmInClient: data.confirm_in_client ?? null,
      tools: toolPolicies,
    },
  };
}

function policyAmount(
  value: unknown,
  currency: string,
  path: readonly (string | number)[],
  problem: (path: readonly (string | number)[], message: string) => void,
): number | null {
  const key = path.at(-1);
  if (value === undefined) {
    problem(path, `${String(key)} is required: write the cap as a quoted decimal string such as "100.00".`);
    return null;
  }
  try {
    return parseAmount(value, currency);
  } catch (error) {
    if (!(error instanceof MoneyError)) throw error;
    problem(path, `${String(key)} for ${currency}: ${error.message}${typeof value === 'number' ? ' Quote it in YAML: "100.00".' : ''}`);
    return null;
  }
}
