/**
 * The secrets scan over the whole suite: every test file records the secrets it hands out and everything the servers
 * give back (test/support/leak-watch.ts); after the last test this looks for every secret in every record. A leak
 * fails the run, naming where it was found.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const directory = mkdtempSync(join(tmpdir(), 'mim-leak-watch-'));
  process.env.MIM_LEAK_DIR = directory;
  return () => {
    const lines = (prefix: string): string[] =>
      readdirSync(directory)
        .filter((file) => file.startsWith(prefix))
        .flatMap((file) => readFileSync(join(directory, file), 'utf8').split('\n').filter((line) => line !== ''));
    const secrets = [...new Set(lines('secrets').map((line) => JSON.parse(line) as string))];
    const artifacts = lines('artifacts').map((line) => JSON.parse(line) as { kind: string; text: string });
    const leaks: string[] = [];
    let bytes = 0;
    for (const artifact of artifacts) {
      bytes += artifact.text.length;
      for (const value of secrets) {
        const at = artifact.text.indexOf(value);
        if (at !== -1) leaks.push(`${artifact.kind}: ...${artifact.text.slice(Math.max(0, at - 80), at + value.length + 20)}...`);
      }
    }
    rmSync(directory, { recursive: true, force: true });
    console.log(`secrets scan: ${secrets.length} secrets looked for in ${artifacts.length} records (${(bytes / 1e6).toFixed(1)} MB of logs, tool results, HTTP answers, database rows and files): ${leaks.length} leaks`);
    if (leaks.length > 0) {
      // Vitest reports an error thrown here but still exits 0: set the exit code so CI fails.
      console.error(`Secrets leaked (${leaks.length}):\n${leaks.slice(0, 20).join('\n')}`);
      process.exitCode = 1;
    }
  };
}
