/** The `mollie-invoice-mcp` command: parses arguments and hands over to one command module. */
// Each command's module is imported only when that command runs: a stdio server starting for a client window should
// not pay for loading the demo, the audit commands or the HTTP transport.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { processOutput, UsageError, type CommandOutput } from './commands/output.js';
import { ConfigError, readConfig } from './config.js';
import { defaultDatabasePath } from './database.js';
import { CredentialError } from './mollie/credentials.js';

const USAGE = `Usage: mollie-invoice-mcp <command> [options]

  serve [--transport stdio|http] [--host H] [--port N] [--simulator] [--policies DIR] [--db FILE]
                        the MCP server: stdio (one agent, MOLLIE_MCP_AGENT) or Streamable HTTP
                        (agents by bearer token; 127.0.0.1:3333 by default); --simulator uses the
                        offline Mollie simulator
  demo                  offline walk-through on the simulator
  policy check [--policies DIR]
                        validate every policy file; print agents x tools
  policy explain --agent A --tool T [--amount "12.50 EUR"] [--mode test|live] [--policies DIR]
                        the decision for one call and the rule behind it
  audit list [--agent A] [--tool T] [--since ISO] [--limit N] [--db FILE]
                        recent calls, one readable line each
  audit export --format jsonl|csv [--out FILE] [--db FILE]
                        every audit row
  audit verify [--db FILE] [--threads N] [--checkpoints DIR [--public-key FILE]]
                        recompute the hash chain; exit 1 at the first bad row (large logs are
                        checked in ranges on N threads, by default one per core); with
                        --checkpoints, also check the log reaches every signed checkpoint
  keys create --out FILE
                        a new Ed25519 key for signing audit log checkpoints (FILE, and FILE.pub)
  token create --agent A
                        a new agent token (shown once) and its token_sha256 line
  approvals [--db FILE]  money-moving calls waiting for a person's approval
  approve <approval_id> [--db FILE]
                        approve one (prints exactly what it lets happen; no further prompt)
  reject <approval_id> [--db FILE]
                        refuse one

Environment: MOLLIE_API_KEY, MOLLIE_MCP_AGENT, MOLLIE_MCP_TOKEN, MOLLIE_MCP_POLICIES, MOLLIE_MCP_DB, ... (see README.md).`;

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(args: string[], options: Options, positionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

const string = { type: 'string' } as const;

/** The named database, or both default ones (real and simulator) when none is named. */
function approvalDatabases(env: Readonly<Record<string, string | undefined>>, db: string | undefined): string[] {
  const config = readConfig(env, db ? { db } : {});
  return config.dbPathIsDefault ? [config.dbPath, defaultDatabasePath(env, true)] : [config.dbPath];
}

export async function main(argv: string[], env: Readonly<Record<string, string | undefined>>, io: CommandOutput): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'serve': {
      const { values } = parse(argv.slice(1), { transport: string, host: string, port: string, simulator: { type: 'boolean' }, policies: string, db: string });
      const config = readConfig(env, {
        simulator: values.simulator === true,
        ...(values.policies ? { policies: values.policies as string } : {}),
        ...(values.db ? { db: values.db as string } : {}),
        ...(values.host ? { host: values.host as string } : {}),
        ...(values.port ? { port: values.port as string } : {}),
      });
      const { serve } = await import('./commands/serve.js');
      return serve(config, (values.transport as string | undefined) ?? 'stdio', env, io);
    }
    case 'demo':
      parse(argv.slice(1), {});
      const { runDemo } = await import('./demo.js');
      await runDemo(io);
      return 0;
    case 'policy': {
      if (sub === 'check') {
        const { values } = parse(rest, { policies: string });
        const { policyCheck } = await import('./commands/policy.js');
        return policyCheck(readConfig(env, values.policies ? { policies: values.policies as string } : {}).policiesDir, io);
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
        const { values } = parse(rest, { agent: string, tool: string, since: string, limit: string, db: string });
        const config = readConfig(env, values.db ? { db: values.db as string } : {});
        const { auditList } = await import('./commands/audit.js');
        return auditList(config.dbPath, values as Record<string, string | undefined>, io);
      }
      if (sub === 'export') {
        const { values } = parse(rest, { format: string, out: string, db: string });
        const config = readConfig(env, values.db ? { db: values.db as string } : {});
        const { auditExport } = await import('./commands/audit.js');
        return auditExport(config.dbPath, { format: values.format as string | undefined, out: values.out as string | undefined }, io);
      }
      if (sub === 'verify') {
        const { values } = parse(rest, { db: string, threads: string, checkpoints: string, 'public-key': string });
        const config = readConfig(env, values.db ? { db: values.db as string } : {});
        const publicKey = (values['public-key'] as string | undefined) ?? config.checkpoints?.keyPath;
        if (values.checkpoints !== undefined && publicKey === undefined) {
          throw new UsageError('--checkpoints needs the key they were signed with: --public-key FILE (the .pub file from `keys create`), or MOLLIE_MCP_SIGNING_KEY.');
        }
        const { auditVerify } = await import('./commands/audit.js');
        return auditVerify(config.dbPath, values.threads as string | undefined, io, values.checkpoints === undefined ? undefined : { directory: values.checkpoints as string, publicKey: publicKey! });
      }
      break;
    }
    case 'approvals': {
      const { values } = parse(argv.slice(1), { db: string });
      const { listApprovals } = await import('./commands/approvals.js');
      return listApprovals(approvalDatabases(env, values.db as string | undefined), io);
    }
    case 'approve':
    case 'reject': {
      const { values, positionals } = parse(argv.slice(1), { db: string }, true);
      if (positionals.length > 1) throw new UsageError(`${command} takes one approval id.`);
      const { approverName, decideApproval } = await import('./commands/approvals.js');
      return decideApproval(approvalDatabases(env, values.db as string | undefined), positionals[0], command === 'approve' ? 'approved' : 'rejected', approverName(env), io);
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
        const { values } = parse(rest, { agent: string });
        const { tokenCreate } = await import('./commands/token.js');
        return tokenCreate(values.agent as string | undefined, io);
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
      process.stderr.write(`mollie-invoice-mcp: ${error.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    // Only on this error path: the policy loader (yaml, zod) is not worth importing just to name its error class.
    const { PolicyError } = await import('./policy/load-policies.js');
    const known = error instanceof PolicyError || error instanceof CredentialError || error instanceof ConfigError;
    process.stderr.write(`mollie-invoice-mcp: ${known ? '' : 'unexpected error: '}${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
