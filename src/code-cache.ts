/**
 * The bundled CLI (`cli.bundle.cjs`, written by `npm run build`) compiled from V8's code cache beside it. Node 20
 * parses and compiles every module afresh at each start (it has no compile cache of its own before Node 22), and for a
 * stdio server that a client starts with every window that was most of its start-up: the cache turns it into a read
 * of bytecode. A cache that does not fit this Node (another version, other flags) is refused by V8 and the bundle is
 * compiled from source instead, so the command works either way.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

/**
 * A server mostly waits for calls: V8's young generation stays at its initial 1 MB semi-spaces instead of doubling up
 * to 16 MB while modules load. V8 accepts a code cache only under the flags it was made with, and the cache is made by
 * a server (scripts/bundle.mjs), so these are set before compiling, for `serve` only.
 */
export const SERVE_V8_FLAGS = '--semi-space-growth-factor=1';

export function setServeFlags(): void {
  setFlagsFromString(SERVE_V8_FLAGS);
}

export interface CompiledBundle {
  script: Script;
  /** False when there was no cache or V8 refused it, and the bundle was compiled from source. */
  fromCache: boolean;
}

export function compileBundle(file: string): CompiledBundle {
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {
    cachedData = undefined;
  }
  // esbuild writes the bundle in ASCII, so latin1 reads it without a UTF-8 decoding pass.
  const source = readFileSync(file, 'latin1');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  return { script, fromCache: cachedData !== undefined && !script.cachedDataRejected };
}

/** Runs the bundle as a CommonJS module, as Node would have run the file itself. */
export function runBundle(file: string, compiled: CompiledBundle): void {
  const module = { exports: {} };
  (compiled.script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file));
}

/** The cache of everything compiled so far, written when the process exits: used by the build only. */
export function writeCodeCacheAtExit(compiled: CompiledBundle, out: string): void {
  process.once('exit', () => writeFileSync(out, compiled.script.createCachedData()));
}

/**
 * Compiles and runs a bundle the way the installed command does: with the server's V8 flags for `serve`, from its
 * cache, and writing the cache at exit when the build asks for it (MOLLIE_MCP_WRITE_CODE_CACHE).
 */
export function launchBundle(file: string, serving: boolean): void {
  if (serving) setServeFlags();
  const compiled = compileBundle(file);
  if (process.env.MOLLIE_MCP_WRITE_CODE_CACHE) writeCodeCacheAtExit(compiled, process.env.MOLLIE_MCP_WRITE_CODE_CACHE);
  runBundle(file, compiled);
}
