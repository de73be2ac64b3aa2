/** Where a command writes: stdout for its answer, stderr for guidance; both replaceable in tests. */
export interface CommandOutput {
  out(line: string): void;
  err(line: string): void;
}

export const processOutput: CommandOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** A mistake in how a command was called: exit 2, with the usage unless the message alone says what to do. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
  }
}
