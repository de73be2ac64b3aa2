// Writes mcp.json.example from the code behind `client-config` (run after `npm run build`: npm run mcp-example).
import { writeFileSync } from 'node:fs';
import { exampleFile } from '../dist/src/commands/client-config.js';

writeFileSync(new URL('../mcp.json.example', import.meta.url), exampleFile());
console.log('Wrote mcp.json.example');
