/**
 * The policies and the people file read together: an approver named in a policy who is not an approver in the people
 * file, or more approvals needed than there are people to give them, means calls nobody could ever approve. Such
 * mistakes stop `serve` and fail `policy check`, with the policy file and line.
 */
import type { PolicyProblem } from '../policy/load-policies.js';
import type { PolicySet, ToolPolicy } from '../policy/policy.js';
import { hasRole, type PeopleSet } from './load-people.js';

/** Whether any call of this tool can wait for a person. */
function asksPeople(tool: ToolPolicy): boolean {
  return tool.confirm || [...tool.limits.values()].some((caps) => caps.confirmAbove !== null);
}

export function checkApprovers(policies: PolicySet, people: PeopleSet | null): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const person of people?.people.values() ?? []) {
    const agent = [...policies.agents.values()].find((candidate) => candidate.tokenSha256 === person.tokenSha256);
    if (agent) {
      // Whoever holds the agent's token would be this person too: the agent could approve its own calls.
      problems.push({ file: people!.file, line: person.line, message: `${person.name}'s token_sha256 is agent "${agent.agent}"'s (${agent.file}); give ${person.name} a personal token of their own (\`mollie-invoice-mcp token create --person ${person.name}\`).` });
    }
  }
  for (const agent of policies.agents.values()) {
    for (const [name, tool] of agent.tools) {
      const problem = (message: string): void => {
        problems.push({ file: agent.file, line: tool.approversLine, message });
      };
      if (people === null) {
        if (tool.approvers !== null || tool.approvalsNeeded > 1) {
          problem(`tools.${name} names approvers or approvals_needed, which need a people file: set MOLLIE_MCP_PEOPLE to the YAML file naming the approvers (docs/console.md), or remove them.`);
        }
        continue;
      }
      if (!asksPeople(tool)) continue;
      const unknown = (tool.approvers ?? []).filter((person) => !hasRole(people.people.get(person), 'approver'));
      for (const person of unknown) {
        problem(`tools.${name}.approvers names "${person}", who is ${people.people.has(person) ? 'not an approver' : 'not'} in the people file ${people.file}; add them there with the approver role, or remove the name.`);
      }
      const eligible = tool.approvers === null ? [...people.people.values()].filter((person) => hasRole(person, 'approver')).length : tool.approvers.length - unknown.length;
      if (unknown.length === 0 && eligible < tool.approvalsNeeded) {
        problem(
          eligible === 0
            ? `${name} calls of agent "${agent.agent}" wait for a person, but ${people.file} names no approver; add one, or calls that need approval can never go ahead.`
            : `tools.${name}.approvals_needed is ${tool.approvalsNeeded} but only ${eligible} approver(s) in ${people.file} may approve; add approvers or lower it.`,
        );
      }
    }
  }
  return problems;
}
