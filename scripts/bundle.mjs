// Turns dist/src/cli.js (tsc's output) into one file with its pure-JavaScript dependencies (the MCP SDK, zod, yaml):
// a stdio server then starts from one file instead of about 400 modules, which is a third of its start-up. The other
// files in dist/ stay as tsc wrote them (the verify worker and the tests import them). Native and lazily loaded
// packages stay outside: better-sqlite3 (a native addon) and @mollie/api-client.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli.js'],
  outdir: 'dist/src',
  // Each command (and the HTTP transport) in a chunk of its own: a stdio server does not parse the HTTP stack.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  external: ['better-sqlite3', '@mollie/api-client'],
  // CommonJS packages inside an ESM bundle still call require() for Node's own modules.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module';\nconst require = __bundleRequire(import.meta.url);" },
  logLevel: 'warning',
});
