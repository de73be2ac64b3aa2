#!/usr/bin/env node
/** The installed command (`dist/src/cli.js` after `npm run build`): runs the bundled CLI from its code cache. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBundle, runBundle, setServeFlags, writeCodeCacheAtExit } from './code-cache.js';

const bundle = join(dirname(fileURLToPath(import.meta.url)), 'cli.bundle.cjs');
if (process.argv[2] === 'serve') setServeFlags();
const compiled = compileBundle(bundle);
// Only the build sets this (scripts/bundle.mjs): one server start, then the cache holds every function it compiled.
if (process.env.MOLLIE_MCP_WRITE_CODE_CACHE) writeCodeCacheAtExit(compiled, process.env.MOLLIE_MCP_WRITE_CODE_CACHE);
runBundle(bundle, compiled);
