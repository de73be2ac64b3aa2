#!/usr/bin/env node
/** The `mollie-invoice-mcp` command. */
import { runDemo } from './demo.js';

const USAGE = `Usage: mollie-invoice-mcp <command>

Commands available in this version:
  demo      offline walk-through on the built-in Mollie simulator

The MCP server (serve), policies, the audit log and approvals are being built; see README.md.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === 'demo' && rest.length === 0) {
    await runDemo();
    return 0;
  }
  process.stderr.write(`mollie-invoice-mcp: unknown command or arguments: ${[command, ...rest].join(' ')}\n\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`mollie-invoice-mcp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
