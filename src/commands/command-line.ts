/**
 * How a person runs this CLI from a terminal, for every message that tells them what to run: by name when the
 * `mollie-invoice-mcp` on their PATH is this very installation, otherwise node with this CLI's absolute path, so the
 * command works as printed either way; with `--db` when the server's database is not the default one.
 */
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { packagePath } from '../package-root.js';

export const COMMAND_NAME = 'mollie-invoice-mcp';

let invocation: string | undefined;

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** `mollie-invoice-mcp`, or `'/usr/bin/node' '/path/to/dist/src/cli.js'` when that name is not this CLI on the PATH. */
export function cliInvocation(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (invocation !== undefined) return invocation;
  const cli = packagePath('dist/src/cli.js');
  const onPath = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').some((dir) => {
    // npm puts a .cmd shim on Windows, which cannot be followed back to the CLI: trust the name there.
    if (process.platform === 'win32') return existsSync(join(dir, `${COMMAND_NAME}.cmd`));
    return sameFile(join(dir, COMMAND_NAME), cli);
  });
  invocation = onPath ? COMMAND_NAME : `${shellQuote(process.execPath)} ${shellQuote(cli)}`;
  return invocation;
}

/** The database options a command needs to open the server's file: none for the default one, which it finds itself. */
export function databaseArgs(db: { dbPath: string; dbPathIsDefault: boolean }): string[] {
  return db.dbPathIsDefault || db.dbPath === ':memory:' ? [] : ['--db', db.dbPath];
}

/** A command line a person can paste into a terminal, e.g. `mollie-invoice-mcp approve ap_... --db /srv/m.db`. */
export function commandLine(args: readonly string[], env?: Readonly<Record<string, string | undefined>>): string {
  const line = [cliInvocation(env), ...args.map(shellQuote)].join(' ');
  // PowerShell, Windows' default terminal, runs a quoted program path only after its call operator.
  return process.platform === 'win32' && line.startsWith("'") ? `& ${line}` : line;
}

/**
 * One word as a POSIX shell (or, on Windows, PowerShell) reads it back unchanged: single quotes, inside which
 * neither expands anything ($, backticks, %).
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_\/.:=@+,-]+$/.test(word)) return word;
  if (process.platform === 'win32') return `'${word.replace(/'/g, "''")}'`;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
