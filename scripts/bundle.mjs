// The second half of `npm run build`, after tsc:
// 1. dist/src/cli.js (tsc's CLI) becomes dist/src/cli.bundle.cjs: one CommonJS file with its pure-JavaScript
//    dependencies (the MCP SDK, zod, yaml, pino). A server starts from one file instead of about 400 modules, and
//    each command's modules are still evaluated only when that command runs. better-sqlite3's compiled addon and
//    @mollie/api-client (loaded on the first call to real Mollie) and pg (loaded only for a PostgreSQL store) stay outside.
// 2. dist/src/cli.js becomes the launcher (src/launch.ts), which compiles the bundle from V8's code cache.
// 3. One warm-up start of `serve --simulator`, answering initialize and tools/list, writes that cache
//    (dist/src/cli.bundle.cjs.cache) with every function a starting server compiles.
// With --bench (npm run bench) it does the same for the benchmarks' no-op server.
// The rest of dist/ stays as tsc wrote it: the verify worker runs from there, and tests import modules from it.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const BUNDLE = 'dist/src/cli.bundle.cjs';
const CACHE = `${BUNDLE}.cache`;
/**
 * The MCP SDK loads its Ajv validator at start (Ajv and its formats, bundled into the SDK: a fifth of the bundle),
 * though a server uses it only to check a person's answer to an elicitation. In the bundle, the two ways it comes in
 * (the server's default validator, `@modelcontextprotocol/server/_shims`, and the one src/server.ts names) are replaced
 * by a wrapper that loads the SDK's own CommonJS build of it from node_modules on the first validation: behaviour is
 * the SDK's own, and Ajv is neither read nor held in memory by a server that never asks a person.
 */
const DEFERRED_AJV = /^@modelcontextprotocol\/server\/(_shims|validators\/ajv)$/;
const deferAjv = {
  name: 'defer-ajv',
  setup(builder) {
    // The wrapper's own require() of the real thing stays a require() from node_modules.
    builder.onResolve({ filter: DEFERRED_AJV }, (args) => (args.namespace === 'deferred-ajv' ? { path: args.path, external: true } : { path: args.path, namespace: 'deferred-ajv' }));
    builder.onLoad({ filter: /.*/, namespace: 'deferred-ajv' }, () => ({
      loader: 'js',
      resolveDir: process.cwd(),
      contents: `
        import process from 'node:process';
        let real;
        export class AjvJsonSchemaValidator {
          constructor(ajv) { this.ajv = ajv; this.inner = undefined; }
          getValidator(schema) {
            real ??= require('@modelcontextprotocol/server/validators/ajv');
            this.inner ??= new real.AjvJsonSchemaValidator(this.ajv);
            return this.inner.getValidator(schema);
          }
        }
        export { AjvJsonSchemaValidator as DefaultJsonSchemaValidator, process };`,
    }));
  },
};

/** One CommonJS file from tsc's output, for the launcher to compile from its code cache. */
async function bundle(entry, outfile) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Less to read and hold in memory at each start; names stay, so stack traces stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    charset: 'ascii',
    sourcemap: true,
    // better-sqlite3's JavaScript is bundled too; its compiled addon is loaded by path (src/database.ts).
    // The SDK's client is only for `demo` (an in-process client): loaded from node_modules when the demo runs, it
    // costs a starting server nothing.
    external: ['@mollie/api-client', 'pg', '*.node', '@modelcontextprotocol/client'],
    // import('@mollie/api-client') becomes a require() of its CommonJS build: a script compiled from a code cache has
    // no dynamic-import callback on Node 20.
    supported: { 'dynamic-import': false },
    // The code finds its package root from its own location (src/package-root.ts).
    define: { 'import.meta.url': '__bundle_url' },
    banner: { js: "var __bundle_url=require('node:url').pathToFileURL(__filename).href;" },
    plugins: [deferAjv],
    logLevel: 'warning',
  });
  // The launcher reads the bundle as latin1 (src/code-cache.ts), which is right only for ASCII. esbuild escapes
  // non-ASCII text, except in the raw strings of tagged templates, which it must keep as written.
  const text = readFileSync(outfile);
  const at = text.findIndex((byte) => byte > 0x7f);
  if (at !== -1) {
    const line = text.subarray(0, at).toString('latin1').split('\n').length;
    throw new Error(`${outfile}:${line}: a non-ASCII character in the bundle (near "${text.subarray(Math.max(0, at - 40), at + 10).toString('utf8')}"), which the launcher would misread; write it as an escape or an HTML entity in the source.`);
  }
}

/**
 * Starts `launcher` once as a stdio server, asks what a client asks first (initialize, tools/list) and closes stdin:
 * the launcher writes the code cache of everything that start compiled when it exits.
 */
async function writeCodeCache(launcher, args, cache, extraEnv = {}) {
  rmSync(cache, { force: true });
  const dir = mkdtempSync(join(tmpdir(), 'mim-build-'));
  try {
    mkdirSync(join(dir, 'policies'));
    writeFileSync(
      join(dir, 'policies', 'warmup.yaml'),
      'agent: warmup\ndescription: Build step that writes the code cache\nmodes: [test]\ntools:\n  create_invoice_payment:\n    limits:\n      EUR: { per_call: "1.00", per_day: "1.00", count_per_day: 1 }\n  get_payment_status: {}\n  list_logs: { scope: own }\n  refund:\n    limits:\n      EUR: { per_call: "1.00", per_day: "1.00", count_per_day: 1 }\n',
    );
    const env = { PATH: process.env.PATH ?? '', HOME: dir, MOLLIE_MCP_POLICIES: join(dir, 'policies'), MOLLIE_MCP_DB: join(dir, 'warmup.db'), MOLLIE_MCP_AGENT: 'warmup', MOLLIE_MCP_CHECKOUT_PORT: '0', LOG_LEVEL: 'info', MOLLIE_MCP_WRITE_CODE_CACHE: resolve(cache), ...extraEnv };
    const child = spawn(process.execPath, [launcher, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('"id":2')) child.stdin.end();
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const requests = [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'build', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    ];
    child.stdin.write(requests.map((request) => `${JSON.stringify(request)}\n`).join(''));
    const code = await new Promise((done) => child.once('exit', done));
    if (code !== 0 || !stdout.includes('"tools"')) throw new Error(`the warm-up server did not answer tools/list (exit ${code}):\n${stderr}`);
    if (statSync(cache).size === 0) throw new Error(`${cache} is empty`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await bundle('dist/src/cli.js', BUNDLE);
copyFileSync('dist/src/launch.js', 'dist/src/cli.js');
// Runnable by name from a clone too (a symlink on the PATH), not only through npm's bin links, which set the mode.
chmodSync('dist/src/cli.js', 0o755);
copyFileSync('dist/src/launch.js.map', 'dist/src/cli.js.map');
await writeCodeCache('dist/src/cli.js', ['serve', '--simulator'], CACHE);

// npm run bench: the no-op server of the benchmarks, bundled and started the same way, so cold starts compare alike.
if (process.argv.includes('--bench')) {
  await bundle('dist/bench/noop-server.js', 'dist/bench/noop-server.bundle.cjs');
  // Warmed up with a database opened, so the cache also holds that path's functions.
  await writeCodeCache('dist/bench/noop-launch.js', [], 'dist/bench/noop-server.bundle.cjs.cache', { NOOP_OPEN_DATABASE: ':memory:' });
}
