/** Starts the bundled no-op server from its code cache, the way dist/src/cli.js starts the real one (npm run bench builds both). */
import { launchBundle } from '../src/code-cache.js';

launchBundle(new URL('./noop-server.bundle.cjs', import.meta.url).pathname, true);
