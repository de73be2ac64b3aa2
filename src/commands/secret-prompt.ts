/**
 * A personal token typed at a prompt, not echoed: a token never goes on the command line, where `ps` and the shell's
 * history would keep it. Null when there is no terminal to ask on.
 */
import { createInterface } from 'node:readline';

export function promptSecret(question: string): Promise<string | null> {
  const input = process.stdin;
  if (!input.isTTY || !process.stderr.isTTY) return Promise.resolve(null);
  return new Promise((resolve) => {
    const rl = createInterface({ input, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput(text: string): void };
    let asked = false;
    // Everything typed after the question is replaced by nothing on the screen.
    output._writeToOutput = (text: string) => {
      if (!asked) process.stderr.write(text);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer.trim());
    });
    asked = true;
    rl.on('SIGINT', () => {
      rl.close();
      resolve(null);
    });
  });
}
