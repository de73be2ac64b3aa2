/**
 * What a loaded, validated policy looks like in memory. Amounts are already integer minor units; the YAML format and
 * its validation live in load-policies.ts.
 */
import type { MollieMode } from '../mollie/port.js';

export interface CurrencyLimits {
  perCall: number;
  perDay: number | null;
  countPerDay: number | null;
  /** Calls over this amount need a person's approval (confirm_above); null: only `confirm` decides. */
  confirmAbove: number | null;
}

export type LogScope = 'own' | 'all';

export interface ToolPolicy {
  /** Currency code to caps; a currency not listed is denied for a tool that moves money. */
  limits: ReadonlyMap<string, CurrencyLimits>;
  redirectHosts: readonly string[];
  /** Whose audit entries it reads (list_logs), or whose pay links it may withdraw (create/cancel_invoice_payment). */
  scope: LogScope;
  /** Every call needs a person's approval (confirm: true). */
  confirm: boolean;
  /** Who may approve these calls (approvers: [alice, bob]); null: every person with the approver role. */
  approvers: readonly string[] | null;
  /** How many different people must approve one call (approvals_needed, default 1). */
  approvalsNeeded: number;
  /** The line of approvers (or approvals_needed) in the policy file, for problems found against the people file. */
  approversLine: number | null;
  /** this_server: only payments this server created (its checkouts, and payments through its links); any: every payment of the account. */
  payments: 'this_server' | 'any';
}

export interface AgentPolicy {
  agent: string;
  description: string | null;
  tokenSha256: string | null;
  modes: readonly MollieMode[];
  ratePerMinute: number | null;
  /**
   * Whether a yes given in the agent's own client (MCP elicitation) counts as a person's approval. The client is the
   * agent's software: over HTTP anything holding the agent's token can answer its own question. Null: yes over stdio
   * (the operator chose the client that starts the server), no over HTTP.
   */
  confirmInClient: boolean | null;
  tools: ReadonlyMap<string, ToolPolicy>;
  /** The policy file, as the operator wrote it, for rules and audit rows. */
  file: string;
  /** sha256 of the file's bytes, written into every audit row so an auditor knows which rules decided. */
  sha256: string;
}

export interface PolicySet {
  directory: string;
  agents: ReadonlyMap<string, AgentPolicy>;
}

/** What the policy needs to know about a tool, declared by the tool itself; the policy never names a tool. */
export interface ToolCapabilities {
  name: string;
  /** Has caps: calls carry an amount of money. */
  movesMoney: boolean;
  /** Accepts a redirect URL whose host the policy restricts. */
  redirects: boolean;
  /** Reads other calls' audit entries, restricted by `scope`. */
  readsAuditLog: boolean;
  /** Can wait for a person's approval (`confirm`, `confirm_above`): takes an `approval_id` argument. */
  approvable: boolean;
  /** Acts on a payment the agent names by its id (`payments` restricts which). */
  actsOnPayments: boolean;
  /** Can withdraw an invoice's pay links (`scope`: own, those the agent made; all, any agent's). */
  withdrawsLinks: boolean;
}
