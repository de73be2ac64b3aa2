/** The `mollie-invoice-mcp` command: parses arguments and hands over to one command module. */
// Each command's module is imported only when that command runs: a stdio server starting for a client window should
// not pay for loading the demo, the audit commands or the HTTP transport.
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { processOutput, UsageError, type CommandOutput } from './commands/output.js';
import { ConfigError, readConfig } from './config.js';
import { defaultDatabasePath } from './database.js';
import { postgresLocation } from './store/location.js';
import { CredentialError } from './mollie/credentials.js';

const USAGE = `Usage: mollie-invoice-mcp <command> [options]

  serve                 the MCP server over stdio (one agent, MOLLIE_MCP_AGENT) or Streamable HTTP
  demo                  offline walk-through on the simulator
  client-config         the entry to paste into Claude Desktop, Cursor, VS Code or Claude Code
  simulate              play the customer on the simulator: pay, fail, cancel or expire
  policy check|explain  validate the policies; explain one decision
  audit list|export|verify|story
                        read, export and verify the audit log; the story of a payment or invoice
  approvals             money-moving calls waiting for a person's approval
  approve | reject      decide one (--as NAME with a people file)
  token create          a new agent token, or a person's (--person)
  keys create           a key for signing audit log checkpoints
  db migrate|copy       the shared PostgreSQL store's schema; copy a SQLite store into it

Run \`mollie-invoice-mcp <command> --help\` for a command's options, \`mollie-invoice-mcp --version\` for the version.
Environment: MOLLIE_API_KEY, MOLLIE_MCP_AGENT, MOLLIE_MCP_TOKEN, MOLLIE_MCP_POLICIES, MOLLIE_MCP_DB,
MOLLIE_MCP_DATABASE_URL, ... (docs/configuration.md).`;

/** Each command's own help, printed by `<command> --help`. */
const HELP: Record<string, string> = {
  serve: `Usage: mollie-invoice-mcp serve [--transport stdio|http [--stateless]] [--host H] [--port N] [--simulator] [--policies DIR] [--db FILE] [--people FILE]

The MCP server. stdio (the default) speaks for one agent, MOLLIE_MCP_AGENT (with MOLLIE_MCP_TOKEN when its policy
has a token_sha256). --transport http serves Streamable HTTP on 127.0.0.1:3333 (--host, --port), each agent by its
bearer token. --simulator uses the offline Mollie simulator, whose state is kept in the database; over stdio its
checkout page is served on http://127.0.0.1:3334 (MOLLIE_MCP_CHECKOUT_PORT). Logs go to stderr. --people (or
MOLLIE_MCP_PEOPLE) names the approvers and auditors; over HTTP they sign in to the console at /console.
--stateless answers each HTTP request with a fresh server and keeps no sessions, so replicas behind a load balancer
need no affinity; approvals then always go out of band (the console, or approve on the command line).`,
  demo: `Usage: mollie-invoice-mcp demo

An offline walk-through on the simulator: an agent creates a pay link, the customer pays, status, a refund, a
refund over the cap denied, the audit log. Writes nothing outside a temporary folder.`,
  'client-config': `Usage: mollie-invoice-mcp client-config --client claude-desktop|cursor|vscode|claude-code [--agent A[,B...]] [--simulator] [--url URL] [--policies DIR] [--db FILE]

Prints the JSON entry to paste into that client's MCP configuration, with this machine's absolute paths to node,
this CLI, the policies folder and the database, and says on stderr which file it goes in. --agent defaults to
billing-bot; several agents (billing-bot,refund-desk) give one entry each, to paste together. --simulator: the
offline simulator. --url http://127.0.0.1:3333/mcp: the HTTP form, with the bearer
header (the token itself is never printed).`,
  simulate: `Usage: mollie-invoice-mcp simulate pay|fail|cancel|expire <tr_...|pl_...> [--db FILE | --database-url URL]

Plays the customer on the simulator's saved state, as its checkout page does: pays, fails or cancels a payment (or
a new payment through a payment link), or lets it expire. The server records it as it records Mollie's webhook.
--db names the simulator database the server uses (default: the simulator's default database).`,
  policy: `Usage: mollie-invoice-mcp policy check [--policies DIR]
       mollie-invoice-mcp policy explain --agent A --tool T [--amount "12.50 EUR"] [--mode test|live] [--policies DIR]`,
  'policy check': `Usage: mollie-invoice-mcp policy check [--policies DIR] [--people FILE]

Validates every policy file (and the people file, with the approvers the policies name) and prints agents x tools;
exit 1 on any problem.`,
  'policy explain': `Usage: mollie-invoice-mcp policy explain --agent A --tool T [--amount "12.50 EUR"] [--mode test|live] [--policies DIR]

Prints the decision for one call and the rule behind it.`,
  audit: `Usage: mollie-invoice-mcp audit list|export|verify|story [options] (see \`audit <subcommand> --help\`)`,
  'audit list': `Usage: mollie-invoice-mcp audit list [--agent A] [--tool T] [--since ISO] [--limit N] [--payment ID] [--invoice ID] [--db FILE | --database-url URL]

Recent calls, one readable line each, oldest first (20 unless --limit). --payment: the calls about a payment (tr_...)
or a payment link (pl_...); --invoice: the calls about an invoice.`,
  'audit story': `Usage: mollie-invoice-mcp audit story <tr_...|pl_...|invoice_id> [--db FILE | --database-url URL]

Every call, webhook and approval about a payment, a payment link or an invoice (with its links and payments), in
order: time, agent, what happened, decision, reason and rule, policy hash, approvers and Mollie's answer. Exit 1
when nothing in the database mentions the id.`,
  'audit export': `Usage: mollie-invoice-mcp audit export --format jsonl|csv [--out FILE] [--db FILE | --database-url URL]

Every audit row, to stdout or FILE.`,
  'audit verify': `Usage: mollie-invoice-mcp audit verify [--db FILE] [--threads N] [--checkpoints DIR [--public-key FILE]]
       mollie-invoice-mcp audit verify --database-url URL

Recomputes the hash chain; exit 0 if intact, 1 at the first bad row. Large logs are checked in ranges on N threads
(by default one per core). With --checkpoints, also checks the log reaches every signed checkpoint. On PostgreSQL
(MOLLIE_MCP_DATABASE_URL, or --database-url) the database reads the chain in one pass, and the budgets are checked.`,
  db: `Usage: mollie-invoice-mcp db migrate|copy [options] (see \`db <subcommand> --help\`)`,
  'db migrate': `Usage: mollie-invoice-mcp db migrate [--database-url URL] [--grant-to ROLE]

Creates or upgrades the shared PostgreSQL store's schema (MOLLIE_MCP_DATABASE_URL or --database-url, as the role
that is to own the tables), under a lock, so replicas starting together do not race. --grant-to ROLE grants the
server's role what it needs and no more: it can add audit rows but never change, delete or truncate them.`,
  'db copy': `Usage: mollie-invoice-mcp db copy --from FILE [--to URL]

Copies a SQLite store (stop its server first) into an empty PostgreSQL one (--to, or MOLLIE_MCP_DATABASE_URL), in
one transaction: the audit log with its chain intact, budgets, payments, links, approvals and the database id that
signed checkpoints name. Exit 0 only when the copy verifies with the same last hash as the file.`,
  keys: `Usage: mollie-invoice-mcp keys create --out FILE`,
  'keys create': `Usage: mollie-invoice-mcp keys create --out FILE

A new Ed25519 key for signing audit log checkpoints (FILE, and FILE.pub for auditors).`,
  token: `Usage: mollie-invoice-mcp token create --agent A [--policies DIR] | --person NAME`,
  'token create': `Usage: mollie-invoice-mcp token create --agent A [--policies DIR]
       mollie-invoice-mcp token create --person NAME

A new token, shown once: for an agent, with the token_sha256 line for its policy file; for a person (an approver or
auditor), with the token_sha256 line for the people file (MOLLIE_MCP_PEOPLE).`,
  approvals: `Usage: mollie-invoice-mcp approvals [--db FILE | --database-url URL]

Money-moving calls waiting for a person's approval. Without --db (or MOLLIE_MCP_DB) it reads both default databases,
the real one and the simulator's.`,
  approve: `Usage: mollie-invoice-mcp approve <approval_id> [--as NAME] [--note TEXT] [--people FILE] [--db FILE | --database-url URL]

Approves one waiting call and prints exactly what it lets happen; no further prompt. The agent then repeats its call
once with the approval_id. With a people file (MOLLIE_MCP_PEOPLE) you approve as yourself: --as NAME, with your
personal token in MOLLIE_MCP_PERSON_TOKEN or typed at the prompt (never as an argument). A policy's
approvals_needed asks that many different people.`,
  reject: `Usage: mollie-invoice-mcp reject <approval_id> [--as NAME] [--note TEXT] [--people FILE] [--db FILE | --database-url URL]

Refuses one waiting call; the agent's repeat with that approval is denied. --as NAME as for approve.`,
};

/** Options that take no value: after one of them, `--help` is still a flag, not its value. */
const FLAGS = new Set(['--simulator', '--stateless']);

/**
 * `--help` or `-h` as an option of its own: not after `--`, and not where an option's value goes (`--agent -h` is a
 * mistake parseArgs reports, not a request for help that would exit 0 with nothing done).
 */
function asksForHelp(argv: string[]): boolean {
  for (let index = 1; index < argv.length; index += 1) {
    const word = argv[index]!;
    if (word === '--') return false;
    if (word !== '--help' && word !== '-h') continue;
    const before = argv[index - 1]!;
    if (index === 1 || !before.startsWith('-') || before.includes('=') || FLAGS.has(before)) return true;
  }
  return false;
}

/** The help of the command named by the first one or two words, if any. */
function helpFor(argv: string[]): string {
  const [command, sub] = argv;
  return (sub !== undefined && HELP[`${command} ${sub}`]) || (command !== undefined && HELP[command]) || USAGE;
}

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(args: string[], options: Options, positionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

const string = { type: 'string' } as const;

/** --db and --database-url as readConfig takes them (it refuses the two together). */
function storeFlags(values: Record<string, unknown>): { db?: string; databaseUrl?: string } {
  return {
    ...(typeof values.db === 'string' ? { db: values.db } : {}),
    ...(typeof values['database-url'] === 'string' ? { databaseUrl: values['database-url'] } : {}),
  };
}

/**
 * The commands that do not run on the shared PostgreSQL store yet: with MOLLIE_MCP_DATABASE_URL set they stop, rather
 * than quietly keep their records in a SQLite file nobody else reads.
 */
function sqliteOnly(env: Readonly<Record<string, string | undefined>>, command: string): void {
  if ((env.MOLLIE_MCP_DATABASE_URL ?? '').trim() === '') return;
  throw new UsageError(
    `\`${command}\` writes client entries for a SQLite file: a client's own stdio server on the shared PostgreSQL store would need the database password in its configuration. Connect clients to the HTTP replicas instead (client-config --url), or unset MOLLIE_MCP_DATABASE_URL.`,
    false,
  );
}

/** The named database, or both default ones (real and simulator) when none is named. */
function approvalDatabases(env: Readonly<Record<string, string | undefined>>, values: Record<string, unknown>): string[] {
  const config = readConfig(env, storeFlags(values));
  if (config.databaseUrl !== null) return [postgresLocation(config.databaseUrl)];
  return config.dbPathIsDefault ? [config.dbPath, defaultDatabasePath(env, true)] : [config.dbPath];
}

/**
 * The database `audit list` and `audit story` read: the one named, else the default one, else (someone who has only tried the
 * simulator) the simulator's default one; it says which on stderr. `audit verify` and `audit export` never guess: a
 * script that verifies "the" log must not get a clean answer about another file.
 */
function auditDatabase(env: Readonly<Record<string, string | undefined>>, values: Record<string, unknown>): string {
  const config = readConfig(env, storeFlags(values));
  if (config.databaseUrl !== null) return postgresLocation(config.databaseUrl);
  if (!config.dbPathIsDefault || existsSync(config.dbPath)) return config.dbPath;
  const simulator = defaultDatabasePath(env, true);
  return existsSync(simulator) ? simulator : config.dbPath;
}

/**
 * `--db FILE` when a database was named (flag or MOLLIE_MCP_DB), for the commands a command prints. A PostgreSQL
 * store's URL holds its password: it is never printed, and the person runs the command where it is set.
 */
function namedDatabase(env: Readonly<Record<string, string | undefined>>, values: Record<string, unknown>): string[] {
  const config = readConfig(env, storeFlags(values));
  return config.databaseUrl !== null || config.dbPathIsDefault ? [] : ['--db', config.dbPath];
}

export async function main(argv: string[], env: Readonly<Record<string, string | undefined>>, io: CommandOutput): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(command === 'help' && sub !== undefined ? helpFor(argv.slice(1)) : USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    const { VERSION } = await import('./version.js');
    io.out(VERSION);
    return 0;
  }
  if (asksForHelp(argv)) {
    io.out(helpFor(argv));
    return 0;
  }
  switch (command) {
    case 'serve': {
      const { values } = parse(argv.slice(1), { transport: string, host: string, port: string, simulator: { type: 'boolean' }, stateless: { type: 'boolean' }, policies: string, db: string, 'database-url': string, people: string });
      const config = readConfig(env, {
        ...storeFlags(values),
        simulator: values.simulator === true,
        ...(values.people ? { people: values.people as string } : {}),
        ...(values.policies ? { policies: values.policies as string } : {}),
        ...(values.host ? { host: values.host as string } : {}),
        ...(values.port ? { port: values.port as string } : {}),
      });
      const { serve } = await import('./commands/serve.js');
      const transport = (values.transport as string | undefined) ?? 'stdio';
      if (values.stateless === true && transport !== 'http') throw new UsageError('--stateless applies to --transport http: a stdio server speaks to one client and needs no replicas.');
      return serve(config, transport, env, io, { stateless: values.stateless === true });
    }
    case 'demo':
      parse(argv.slice(1), {});
      const { runDemo } = await import('./demo.js');
      await runDemo(io);
      return 0;
    case 'policy': {
      if (sub === 'check') {
        const { values } = parse(rest, { policies: string, people: string });
        const { policyCheck } = await import('./commands/policy.js');
        const config = readConfig(env, { ...(values.policies ? { policies: values.policies as string } : {}), ...(values.people ? { people: values.people as string } : {}) });
        return policyCheck(config.policiesDir, io, config.peopleFile);
      }
      if (sub === 'explain') {
        const { values } = parse(rest, { agent: string, tool: string, amount: string, mode: string, policies: string });
        if (typeof values.agent !== 'string' || typeof values.tool !== 'string') throw new UsageError('policy explain needs --agent and --tool.');
        const config = readConfig(env, values.policies ? { policies: values.policies as string } : {});
        const { policyExplain } = await import('./commands/policy.js');
        return policyExplain(config.policiesDir, { agent: values.agent, tool: values.tool, amount: values.amount as string | undefined, mode: values.mode as string | undefined }, io);
      }
      break;
    }
    case 'audit': {
      if (sub === 'list') {
        const { values } = parse(rest, { agent: string, tool: string, since: string, limit: string, payment: string, invoice: string, db: string, 'database-url': string });
        const { auditList } = await import('./commands/audit.js');
        return auditList(auditDatabase(env, values), values as Record<string, string | undefined>, io);
      }
      if (sub === 'story') {
        const { values, positionals } = parse(rest, { db: string, 'database-url': string }, true);
        if (positionals.length > 1) throw new UsageError('audit story takes one id: a payment id (tr_...), a payment link id (pl_...) or an invoice id.');
        const { auditStory } = await import('./commands/audit.js');
        return auditStory(auditDatabase(env, values), positionals[0], io);
      }
      if (sub === 'export') {
        const { values } = parse(rest, { format: string, out: string, db: string, 'database-url': string });
        const config = readConfig(env, storeFlags(values));
        const { auditExport } = await import('./commands/audit.js');
        return auditExport(config.databaseUrl !== null ? postgresLocation(config.databaseUrl) : config.dbPath, { format: values.format as string | undefined, out: values.out as string | undefined }, io);
      }
      if (sub === 'verify') {
        const { values } = parse(rest, { db: string, threads: string, checkpoints: string, 'public-key': string, 'database-url': string });
        const config = readConfig(env, storeFlags(values));
        if (config.databaseUrl !== null && values.threads !== undefined) throw new UsageError('--threads applies to a SQLite log: on PostgreSQL the database reads the log, in one pass.', false);
        const publicKey = (values['public-key'] as string | undefined) ?? config.checkpoints?.keyPath;
        if (values.checkpoints !== undefined && publicKey === undefined) {
          throw new UsageError('--checkpoints needs the key they were signed with: --public-key FILE (the .pub file from `keys create`), or MOLLIE_MCP_SIGNING_KEY.');
        }
        const { auditVerify } = await import('./commands/audit.js');
        return auditVerify(config.databaseUrl !== null ? postgresLocation(config.databaseUrl) : config.dbPath, values.threads as string | undefined, io, values.checkpoints === undefined ? undefined : { directory: values.checkpoints as string, publicKey: publicKey! });
      }
      break;
    }
    case 'approvals': {
      const { values } = parse(argv.slice(1), { db: string, 'database-url': string });
      const { listApprovals } = await import('./commands/approvals.js');
      return listApprovals(approvalDatabases(env, values), io, namedDatabase(env, values));
    }
    case 'approve':
    case 'reject': {
      const { values, positionals } = parse(argv.slice(1), { db: string, 'database-url': string, as: string, note: string, people: string }, true);
      if (positionals.length > 1) throw new UsageError(`${command} takes one approval id.`);
      const [{ approverName, decideApproval }, { promptSecret }] = await Promise.all([import('./commands/approvals.js'), import('./commands/secret-prompt.js')]);
      const config = readConfig(env, values.people ? { people: values.people as string } : {});
      const as = values.as as string | undefined;
      return decideApproval(
        approvalDatabases(env, values),
        positionals[0],
        command === 'approve' ? 'approved' : 'rejected',
        {
          as,
          peopleFile: config.peopleFile,
          token: async () => env.MOLLIE_MCP_PERSON_TOKEN?.trim() || (await promptSecret(`${as ?? ''}'s personal token: `)),
          osUser: approverName(env),
          note: values.note as string | undefined,
        },
        io,
        namedDatabase(env, values),
      );
    }
    case 'simulate': {
      const { values, positionals } = parse(argv.slice(1), { db: string, 'database-url': string }, true);
      if (positionals.length > 2) throw new UsageError('simulate takes what the customer does and one id, such as `simulate pay pl_...`.');
      const config = readConfig(env, { simulator: true, ...storeFlags(values) });
      const { simulate } = await import('./commands/simulate.js');
      return simulate(config.databaseUrl !== null ? postgresLocation(config.databaseUrl) : config.dbPath, positionals[0], positionals[1], config.logLevel, io);
    }
    case 'client-config': {
      const { values } = parse(argv.slice(1), { client: string, agent: string, simulator: { type: 'boolean' }, url: string, policies: string, db: string });
      if (values.url === undefined) sqliteOnly(env, 'client-config');
      const config = readConfig(env, {
        simulator: values.simulator === true,
        ...(values.policies ? { policies: values.policies as string } : {}),
        ...(values.db ? { db: values.db as string } : {}),
      });
      const [{ clientConfig }, { loadPolicies }, { TOOL_CAPABILITIES }, { packagePath }] = await Promise.all([
        import('./commands/client-config.js'),
        import('./policy/load-policies.js'),
        import('../tools/index.js'),
        import('./package-root.js'),
      ]);
      const policies = loadPolicies(config.policiesDir, TOOL_CAPABILITIES);
      const { kindOfFile, mismatch } = await import('./database-kind.js');
      const kind = kindOfFile(config.dbPath);
      const wanted = config.simulator ? 'simulator' : 'mollie';
      return clientConfig(
        {
          client: values.client as string | undefined,
          agent: (values.agent as string | undefined) ?? 'billing-bot',
          simulator: values.simulator === true,
          url: values.url as string | undefined,
          paths: { node: process.execPath, cli: packagePath('dist/src/cli.js'), policies: config.policiesDir, db: config.dbPath },
          agents: new Map([...policies.agents].map(([name, policy]) => [name, { needsToken: policy.tokenSha256 !== null }])),
          policiesDir: config.policiesDir,
          // A simulator entry on a real account's database (an inherited MOLLIE_MCP_DB, say) would be refused at start.
          databaseProblem: kind !== null && kind !== wanted ? mismatch(config.dbPath, wanted, env) : null,
        },
        env,
        io,
      );
    }
    case 'db': {
      if (sub === 'migrate') {
        const { values } = parse(rest, { 'database-url': string, 'grant-to': string });
        const config = readConfig(env, storeFlags(values));
        const { dbMigrate } = await import('./commands/db.js');
        return dbMigrate(config.databaseUrl, values['grant-to'] as string | undefined, io);
      }
      if (sub === 'copy') {
        const { values } = parse(rest, { from: string, to: string });
        // The SQLite file is --from; MOLLIE_MCP_DB does not name it, and does not stand in the way of the URL.
        const config = readConfig({ ...env, MOLLIE_MCP_DB: undefined }, values.to ? { databaseUrl: values.to as string } : {});
        const { dbCopy } = await import('./commands/db.js');
        return dbCopy(values.from as string | undefined, config.databaseUrl, io);
      }
      break;
    }
    case 'keys': {
      if (sub === 'create') {
        const { values } = parse(rest, { out: string });
        const { keysCreate } = await import('./commands/keys.js');
        return keysCreate(values.out as string | undefined, io);
      }
      break;
    }
    case 'token': {
      if (sub === 'create') {
        const { values } = parse(rest, { agent: string, person: string, policies: string });
        const { tokenCreate, personTokenCreate } = await import('./commands/token.js');
        if (values.person !== undefined) {
          if (values.agent !== undefined) throw new UsageError('token create takes --agent or --person, not both.');
          return personTokenCreate(values.person as string, readConfig(env).peopleFile, io);
        }
        return tokenCreate(values.agent as string | undefined, readConfig(env, values.policies ? { policies: values.policies as string } : {}).policiesDir, io);
      }
      break;
    }
    default:
      break;
  }
  throw new UsageError(`unknown command or arguments: ${argv.join(' ')}`);
}

// `audit list | head` closes the pipe early: that is the reader being done, not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2), process.env, processOutput).then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(error.showUsage ? `mollie-invoice-mcp: ${error.message}\n\n${USAGE}\n` : `mollie-invoice-mcp: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    // Only on this error path: the policy loader (yaml, zod) is not worth importing just to name its error class.
    const [{ PolicyError }, { PeopleError }, { StoreError }] = await Promise.all([import('./policy/load-policies.js'), import('./people/load-people.js'), import('./store/postgres/explain.js')]);
    const known = error instanceof PolicyError || error instanceof PeopleError || error instanceof CredentialError || error instanceof ConfigError || error instanceof StoreError;
    process.stderr.write(`mollie-invoice-mcp: ${known ? '' : 'unexpected error: '}${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
