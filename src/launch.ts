#!/usr/bin/env node
/** The installed command (`dist/src/cli.js` after `npm run build`): runs the bundled CLI from its code cache. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBundle } from './code-cache.js';

launchBundle(join(dirname(fileURLToPath(import.meta.url)), 'cli.bundle.cjs'), process.argv[2] === 'serve');
