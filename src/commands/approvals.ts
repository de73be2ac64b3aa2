/**
 * `approvals`, `approve <id>` and `reject <id>`: a person decides a money-moving call an agent asked for. Naming the id
 * on the command line is the decision, so there is no further prompt; what was decided is printed in full, and the
 * person's OS user name goes into the audit log.
 */
import { printable } from '../audit/printable.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { userInfo } from 'node:os';
import { approverNames, Approvals, APPROVAL_ID, formatUtc, namesInWords, type Approval, type Decider } from '../approvals/approvals.js';
import { loadPeople, PeopleError, PERSON_NAME, type PeopleSet } from '../people/load-people.js';
import { tokenMatches } from '../policy/decide.js';
import { AuditLog } from '../audit/audit-log.js';
import { describeLocation, locationExists } from '../store/location.js';
import { openExisting } from './audit.js';
import { commandLine, shellQuote } from './command-line.js';
import { UsageError, type CommandOutput } from './output.js';

/** Who is deciding: the OS account running the command. */
export function approverName(env: Readonly<Record<string, string | undefined>>): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry (some containers): fall back to the environment.
  }
  return env.USER ?? env.LOGNAME ?? 'unknown-user';
}

function minutesAgo(iso: string, now: Date): string {
  const minutes = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 60_000));
  return minutes === 0 ? 'just now' : minutes === 1 ? '1 minute ago' : `${minutes} minutes ago`;
}

function describe(approval: Approval, now: Date): string[] {
  return [
    `  agent:    ${approval.agent}`,
    `  tool:     ${approval.tool}`,
    `  does:     ${approval.action}`,
    `  amount:   ${approval.amount ? `${approval.amount.value} ${approval.amount.currency}` : '-'}`,
    `  payment:  ${approval.paymentId ?? '-'}`,
    `  invoice:  ${approval.invoiceId ?? '-'}`,
    `  asked:    ${formatUtc(approval.askedAt)} (${minutesAgo(approval.askedAt, now)}), by call ${approval.askedCallId}`,
    `  expires:  ${formatUtc(approval.expiresAt)}`,
    `  needs:    ${approval.needed} approval(s)${approval.approvers ? ` from ${namesInWords(approval.approvers)}` : ''}; approved so far by ${approverNames(approval).length > 0 ? namesInWords(approverNames(approval)) : 'nobody'}`,
  ];
}

/** How the person deciding is named: `--as NAME` with their personal token, or, without a people file, the OS user. */
export interface Identity {
  as: string | undefined;
  peopleFile: string | null;
  /** The personal token, from MOLLIE_MCP_PERSON_TOKEN or a prompt; asked for only when --as is given. */
  token: () => Promise<string | null>;
  osUser: string;
  note: string | undefined;
}

/** The people file the server on this database last started with ('' for none), as `serve` records it. */
function namedApproversOf(path: string): string | null {
  const db = openExisting(path);
  try {
    const row = db.prepare<[], { value: string }>("SELECT value FROM store_meta WHERE key = 'named_approvers'").get();
    return row === undefined || row.value === '' ? null : row.value;
  } finally {
    db.close();
  }
}

function withApprovals<T>(dbPath: string, work: (approvals: Approvals) => T, dbArgs: readonly string[] = [], people: PeopleSet | null = null): T {
  const db = openExisting(dbPath);
  try {
    return work(new Approvals(db, new AuditLog(db), undefined, (args) => commandLine([...args, ...dbArgs]), () => people));
  } finally {
    db.close();
  }
}

/**
 * The database files to look in: the one named (MOLLIE_MCP_DB, --db), or, when none is named, every default file that
 * exists (the real one and the simulator's), so `approve` works whichever way the server was started.
 */
function existing(dbPaths: readonly string[]): string[] {
  const found = dbPaths.filter((path) => locationExists(path));
  if (found.length === 0) openExisting(dbPaths[0]!);
  return found;
}

/** The files it reads, said first: "No approvals are waiting" means little without which database was asked. */
function sayDatabases(files: readonly string[], io: CommandOutput): void {
  io.err(files.length === 1 ? `Database: ${describeLocation(files[0]!)}` : `Databases: ${files.map(describeLocation).join(' and ')}`);
}

/** `dbArgs`: the --db the person gave, repeated in the commands this prints so they work as printed. */
export function listApprovals(dbPaths: readonly string[], io: CommandOutput, dbArgs: readonly string[] = []): number {
  const now = new Date();
  let waiting = 0;
  const files = existing(dbPaths);
  sayDatabases(files, io);
  for (const path of files) {
    // Who approved so far, as the server counts it: under its own people file, when it has one and it can be read.
    let people: PeopleSet | null = null;
    const named = namedApproversOf(path);
    if (named !== null) {
      try {
        people = loadPeople(named);
      } catch {
        people = null;
      }
    }
    withApprovals(path, (approvals) => {
      const pending = approvals.pending();
      if (pending.length > 0 && files.length > 1) io.out(`In ${describeLocation(path)}:`);
      for (const approval of pending) {
        const given = approverNames(approval);
        const so = given.length > 0 ? `; approved by ${namesInWords(given)}, ${approval.needed - given.length} more needed` : '';
        io.out(printable(`${approval.approvalId}  ${approval.agent} wants to ${approval.action}; asked ${minutesAgo(approval.askedAt, now)}, expires ${formatUtc(approval.expiresAt)}${so}`));
      }
      waiting += pending.length;
    }, [], people);
  }
  if (waiting === 0) {
    io.out(`No approvals are waiting in ${files.map(describeLocation).join(' or ')}.`);
    return 0;
  }
  io.err('');
  const hint = (verb: string): string => [commandLine([verb]), '<approval_id>', ...dbArgs.map(shellQuote)].join(' ');
  io.err(`Approve one with \`${hint('approve')}\`, or refuse it with \`${hint('reject')}\`.`);
  return 0;
}

/**
 * Who decides. With a people file (named by MOLLIE_MCP_PEOPLE, or recorded by the server on this database) only a
 * named person with their own token may; an OS user name no longer counts, and the command says what to run instead.
 */
async function decider(identity: Identity, dbPath: string, approvalId: string, verb: string, dbArgs: readonly string[], io: CommandOutput, refused: (name: string) => void): Promise<{ by: Decider; people: PeopleSet | null } | number> {
  const serverPeople = namedApproversOf(dbPath);
  // The server's own people file decides who is who: a file of the caller's making would let anyone be "alice".
  if (serverPeople !== null && identity.peopleFile !== null && resolve(identity.peopleFile) !== resolve(serverPeople)) {
    throw new UsageError(`The server on ${describeLocation(dbPath)} names its approvers in ${serverPeople}, not ${identity.peopleFile}; approve with that file (leave MOLLIE_MCP_PEOPLE and --people out, or name that file).`, false);
  }
  const peopleFile = serverPeople ?? identity.peopleFile;
  const note = identity.note ?? null;
  if (identity.as === undefined) {
    if (peopleFile !== null) {
      throw new UsageError(
        `Approvals on ${describeLocation(dbPath)} are made by named people (people file ${peopleFile}): run \`${commandLine([verb, approvalId, '--as', 'NAME', ...dbArgs])}\` with your personal token in MOLLIE_MCP_PERSON_TOKEN, or type it when asked. An OS user name no longer counts.`,
        false,
      );
    }
    return { by: { name: identity.osUser, via: 'cli', authenticated: false, tokenSha256: null, roles: null, note }, people: null };
  }
  if (!PERSON_NAME.test(identity.as)) throw new UsageError('--as needs a person\'s name from the people file: 1-64 lower-case letters, digits, ".", "_" or "-".');
  if (peopleFile === null) throw new UsageError('--as NAME needs the people file that names NAME: set MOLLIE_MCP_PEOPLE (or --people FILE).', false);
  let people: PeopleSet;
  try {
    people = loadPeople(peopleFile);
  } catch (error) {
    if (error instanceof PeopleError) throw new UsageError(error.message, false);
    throw error;
  }
  const token = await identity.token();
  if (token === null || token === '') {
    throw new UsageError(`${verb} --as ${identity.as} needs ${identity.as}'s personal token: set MOLLIE_MCP_PERSON_TOKEN, or run it in a terminal to be asked. It is never given as an argument.`, false);
  }
  const person = people.people.get(identity.as);
  if (person === undefined || !tokenMatches(token, person.tokenSha256)) {
    refused(identity.as);
    io.err(`That is not ${identity.as}'s personal token in ${people.file} (or there is no ${identity.as} there); nothing was ${verb === 'approve' ? 'approved' : 'rejected'}. The attempt is in the audit log.`);
    return 1;
  }
  return { by: { name: person.name, via: 'cli', authenticated: true, tokenSha256: person.tokenSha256, roles: person.roles, note }, people };
}

export async function decideApproval(dbPaths: readonly string[], approvalId: string | undefined, decision: 'approved' | 'rejected', identity: Identity, io: CommandOutput, dbArgs: readonly string[] = []): Promise<number> {
  const verb = decision === 'approved' ? 'approve' : 'reject';
  if (approvalId === undefined || !APPROVAL_ID.test(approvalId)) {
    throw new UsageError(`${verb} needs the approval id from the agent's approval_required error, such as ap_ followed by 24 letters and digits; \`${commandLine(['approvals', ...dbArgs])}\` lists them.`);
  }
  const files = existing(dbPaths);
  const dbPath = files.find((path) => withApprovals(path, (approvals) => approvals.get(approvalId) !== null)) ?? files[0]!;
  sayDatabases([dbPath], io);
  const decided = await decider(identity, dbPath, approvalId, verb, dbArgs, io, (name) => withApprovals(dbPath, (approvals) => approvals.refusedSignIn(approvalId, name, 'cli')));
  if (typeof decided === 'number') return decided;
  const { by, people } = decided;
  return withApprovals(dbPath, (approvals) => {
    const result = approvals.decide(approvalId, decision, by);
    const now = new Date();
    if (!result.ok) {
      io.err(result.message);
      if (result.approval) for (const line of describe(result.approval, now)) io.err(line);
      return 1;
    }
    const approval = result.approval;
    io.out(`${decision === 'approved' ? 'Approved' : 'Rejected'} by ${by.name}: approval ${approval.approvalId}`);
    for (const line of describe(approval, now)) io.out(printable(line));
    io.out('');
    const left = approval.needed - approverNames(approval).length;
    io.out(
      decision === 'rejected'
        ? `Agent "${approval.agent}" is refused if it repeats the call with this approval.`
        : approval.state === 'pending'
          ? `${left} more approval(s) from other people are needed before agent "${approval.agent}" may repeat the call.`
          : `Agent "${approval.agent}" may now repeat the call once with approval_id "${approval.approvalId}", until ${formatUtc(approval.expiresAt)}. Its caps and budgets still apply.`,
    );
    return 0;
  }, dbArgs, people);
}
