/** Starts the bundled no-op server from its code cache, the way dist/src/cli.js starts the real one (npm run bench builds both). */
import { compileBundle, runBundle, setServeFlags, writeCodeCacheAtExit } from '../src/code-cache.js';

const bundle = new URL('./noop-server.bundle.cjs', import.meta.url).pathname;
setServeFlags();
const compiled = compileBundle(bundle);
if (process.env.MOLLIE_MCP_WRITE_CODE_CACHE) writeCodeCacheAtExit(compiled, process.env.MOLLIE_MCP_WRITE_CODE_CACHE);
runBundle(bundle, compiled);
