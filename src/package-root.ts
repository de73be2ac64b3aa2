/**
 * Files shipped beside the code (the example policies, the verify worker), found from the package's root: the code
 * runs from dist/src as tsc builds it, from the bundle's chunks, or from src under the tests, at different depths.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'mollie-invoice-mcp') return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the mollie-invoice-mcp package above ${from}; reinstall it.`);
  }
}

let root: string | undefined;

/** The absolute path of `relative` inside the installed package. */
export function packagePath(relative: string): string {
  root ??= findRoot(dirname(fileURLToPath(import.meta.url)));
  return join(root, relative);
}
