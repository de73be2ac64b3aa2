/** In stdio mode stdout belongs to the MCP protocol: the logger must write to stderr only, and redact secrets. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const LOG_MODULE = new URL('../../dist/src/log.js', import.meta.url).href;

describe('the process logger (built)', () => {
  it('writes to stderr, nothing to stdout, and redacts keys and Authorization headers', async () => {
    const script = `
      const { createLogger } = await import(${JSON.stringify(LOG_MODULE)});
      const log = createLogger('info');
      log.info({ apiKey: 'test_secretKey123', request: { headers: { authorization: 'Bearer test_secretKey123' } } }, 'hello');
    `;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout).toBe('');
    const line = JSON.parse(stderr.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'hello', apiKey: '[redacted]', request: { headers: { authorization: '[redacted]' } } });
    expect(stderr).not.toContain('secretKey123');
  });
});
