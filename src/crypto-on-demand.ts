/**
 * The parts of node:crypto this server uses, with the module loaded on first use. Loading node:crypto costs about
 * 2 MB of memory, and a stdio server that a client starts with every window answers initialize and tools/list without
 * hashing anything: the first hash or id comes with the first call (or the first policy reload).
 */
import type * as NodeCrypto from 'node:crypto';
import { createRequire } from 'node:module';

let loaded: typeof NodeCrypto | undefined;

function nodeCrypto(): typeof NodeCrypto {
  loaded ??= createRequire(import.meta.url)('node:crypto') as typeof NodeCrypto;
  return loaded;
}

export function randomUUID(): string {
  return nodeCrypto().randomUUID();
}

export function randomBytes(size: number): Buffer {
  return nodeCrypto().randomBytes(size);
}

export function createHash(algorithm: string): NodeCrypto.Hash {
  return nodeCrypto().createHash(algorithm);
}

/** One-shot digest of a string, as hex (crypto.hash). */
export function hashHex(algorithm: string, data: string): string {
  return nodeCrypto().hash(algorithm, data, 'hex');
}

export function timingSafeEqual(a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView): boolean {
  return nodeCrypto().timingSafeEqual(a, b);
}
