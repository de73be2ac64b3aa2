/**
 * The people file (MOLLIE_MCP_PEOPLE): who may approve money-moving calls and who may audit, each with the sha256 of
 * a personal token. Read as strictly as the policies: any unknown key, duplicate name or shared token stops the
 * server with file:line, because a half-understood list of approvers would let the wrong person let money out.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { createHash } from '../crypto-on-demand.js';
import { AGENT_ID, RESERVED_ACTORS, type PolicyProblem } from '../policy/load-policies.js';
import { describeIssue, lineOfPath, nodeAt } from '../policy/yaml-lines.js';

export type PersonRole = 'approver' | 'auditor';

export interface Person {
  name: string;
  roles: readonly PersonRole[];
  tokenSha256: string;
  /** The line of token_sha256 in the file, for problems found against the policies. */
  line: number | null;
}

export interface PeopleSet {
  /** The file as given, for messages and audit rows. */
  file: string;
  people: ReadonlyMap<string, Person>;
  /** sha256 of the file's bytes, written into the audit rows of decisions made under it. */
  sha256: string;
}

export class PeopleError extends Error {
  override readonly name = 'PeopleError';
  constructor(readonly problems: readonly PolicyProblem[]) {
    super(problems.map((problem) => `${problem.file}${problem.line !== null ? `:${problem.line}` : ''}: ${problem.message}`).join('\n'));
  }
}

/** Same form as agent ids, so a person's name is safe in a log line, a page and a command line. */
export const PERSON_NAME = AGENT_ID;

const personSchema = z.strictObject({
  name: z.string().regex(PERSON_NAME, 'must be 1-64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit'),
  description: z.string().max(500).optional(),
  roles: z.array(z.enum(['approver', 'auditor'])).min(1, 'must name at least one role: approver, auditor'),
  token_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits, as printed by `mollie-invoice-mcp token create --person NAME`'),
});

const peopleFileSchema = z.strictObject({ people: z.array(personSchema) });

/** Reads and validates the people file; throws a PeopleError listing every problem found. */
export function loadPeople(path: string, cwd: string = process.cwd()): PeopleSet {
  const absolute = resolve(cwd, path);
  const file = absolute.startsWith(cwd + '/') ? relative(cwd, absolute) : absolute;
  let source: Buffer;
  try {
    source = readFileSync(absolute);
  } catch (error) {
    throw new PeopleError([{ file, line: null, message: `cannot read the people file (${(error as NodeJS.ErrnoException).code ?? 'error'}); set MOLLIE_MCP_PEOPLE to the YAML file that names the approvers and auditors (docs/console.md).` }]);
  }
  return parsePeople(file, source);
}

export function parsePeople(file: string, source: Buffer): PeopleSet {
  const problems: PolicyProblem[] = [];
  const lines = new LineCounter();
  const doc = parseDocument(source.toString('utf8'), { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number | null => (offset === undefined ? null : lines.linePos(offset).line);
  if (doc.errors.length > 0) {
    throw new PeopleError(doc.errors.map((error) => ({ file, line: lineOf(error.pos[0]), message: `not valid YAML: ${error.message.split('\n')[0]}` })));
  }
  const parsed = peopleFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const present = nodeAt(doc, issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part))) !== null;
      problems.push({ file, line: lineOfPath(doc, issue, lineOf), message: describeIssue(issue, present, 'docs/console.md') });
    }
    throw new PeopleError(problems);
  }
  const at = (path: readonly (string | number)[]): number | null => lineOf(nodeAt(doc, path)?.range?.[0]);
  const people = new Map<string, Person>();
  const byToken = new Map<string, string>();
  parsed.data.people.forEach((entry, index) => {
    const problem = (key: string, message: string): void => {
      problems.push({ file, line: at(['people', index, key]), message });
    };
    if (RESERVED_ACTORS.has(entry.name)) problem('name', `"${entry.name}" is reserved for the server's own audit entries; choose another name.`);
    if (people.has(entry.name)) problem('name', `"${entry.name}" is named twice; each person has one entry.`);
    const roles = [...new Set(entry.roles)];
    if (roles.length !== entry.roles.length) problem('roles', `a role is listed twice for "${entry.name}".`);
    const sharing = byToken.get(entry.token_sha256);
    if (sharing !== undefined) {
      // A token names its person at sign-in: two people with one token would make every decision a guess.
      problem('token_sha256', `token_sha256 is the same as "${sharing}"'s; give each person their own token (\`mollie-invoice-mcp token create --person ${entry.name}\`).`);
    }
    byToken.set(entry.token_sha256, entry.name);
    people.set(entry.name, { name: entry.name, roles, tokenSha256: entry.token_sha256, line: at(['people', index, 'token_sha256']) });
  });
  if (problems.length > 0) throw new PeopleError(problems);
  return { file, people, sha256: createHash('sha256').update(source).digest('hex') };
}

export function hasRole(person: Person | null | undefined, role: PersonRole): boolean {
  return person !== null && person !== undefined && person.roles.includes(role);
}
