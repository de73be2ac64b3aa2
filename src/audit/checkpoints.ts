/**
 * Signed checkpoints of the audit log's head. The hash chain proves that no row was changed, reordered or removed
 * from the middle, but not that rows were cut off the end, or that the whole file was swapped for an older copy: the
 * chain of a shorter log is just as whole. So the server signs the head's seq and hash (Ed25519, its private key in a
 * file outside the database) every so many rows or minutes and at shutdown, and appends the signed line to a file
 * outside the database. `audit verify --checkpoints DIR` then checks the log reaches every checkpoint with the same
 * hash there.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { SqliteDatabase } from '../database.js';

export const CHECKPOINT_FILE = 'checkpoints.jsonl';

export class CheckpointKeyError extends Error {
  override readonly name = 'CheckpointKeyError';
}

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface VerifyingKey {
  keyId: string;
  publicKey: KeyObject;
}

/** 16 hex digits of the sha256 of the public key, to tell keys apart in checkpoint lines. */
function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** `keys create --out FILE`: a new private key, readable by its owner only; returns the public half to print. */
export function createSigningKey(path: string): { publicKeyPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  try {
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointKeyError(code === 'EEXIST' ? `${path} already exists; a signing key is never overwritten. Choose another --out.` : `cannot write ${path} (${code ?? 'error'}).`);
  }
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(`${path}.pub`, publicKeyPem, { mode: 0o644 });
  return { publicKeyPem, keyId: keyIdOf(publicKey) };
}

export function loadSigningKey(path: string): SigningKey {
  let text: string;
  try {
    if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
      throw new CheckpointKeyError(`MOLLIE_MCP_SIGNING_KEY ${path} can be read by others; make it readable by the server's user only (chmod 600).`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof CheckpointKeyError) throw error;
    throw new CheckpointKeyError(`cannot read MOLLIE_MCP_SIGNING_KEY ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); make one with \`mollie-invoice-mcp keys create --out FILE\`.`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch {
    throw new CheckpointKeyError(`MOLLIE_MCP_SIGNING_KEY ${path} is not a PEM private key; make one with \`mollie-invoice-mcp keys create --out FILE\`.`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new CheckpointKeyError(`MOLLIE_MCP_SIGNING_KEY ${path} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with Ed25519 (\`keys create\`).`);
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

/** The key to check checkpoints with: a public key file, or the public half of the signing key. */
export function loadVerifyingKey(path: string): VerifyingKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CheckpointKeyError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = text.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(text)) : createPublicKey(text);
  } catch {
    throw new CheckpointKeyError(`${path} is not a PEM key: give the .pub file \`keys create\` wrote, or the signing key itself.`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new CheckpointKeyError(`${path} is not an Ed25519 key.`);
  return { keyId: keyIdOf(publicKey), publicKey };
}

interface Head {
  seq: number;
  hash: string;
}

/** What is signed, in this order and no other. */
function payload(fields: { database_id: string; seq: number; hash: string; at: string; key_id: string }): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, database_id: fields.database_id, seq: fields.seq, hash: fields.hash, at: fields.at, key_id: fields.key_id }), 'utf8');
}

export interface CheckpointOptions {
  directory: string;
  /** A checkpoint once this many rows were added since the last one... */
  everyRows: number;
  /** ...or this long after the first row added since, whichever comes first. */
  everyMs: number;
  clock?: () => Date;
  logger?: Logger;
}

/** Writes checkpoints of one database's head while a server runs on it. */
export class Checkpointer {
  private readonly head;
  private readonly file: string;
  private readonly databaseId: string;
  private added = 0;
  private lastSeq = 0;
  private timer: NodeJS.Timeout | null = null;
  private pending = false;

  constructor(
    db: SqliteDatabase,
    private readonly key: SigningKey,
    private readonly options: CheckpointOptions,
  ) {
    mkdirSync(options.directory, { recursive: true, mode: 0o700 });
    this.file = join(options.directory, CHECKPOINT_FILE);
    this.head = db.prepare<[], Head>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    this.databaseId = databaseIdOf(db);
  }

  /** Called for every row appended: cheap; the checkpoint itself is written after the row's transaction. */
  rowAdded(): void {
    this.added += 1;
    if (this.added >= this.options.everyRows) this.soon();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.write('interval'), this.options.everyMs);
      this.timer.unref();
    }
  }

  /** At shutdown: the head as it is last. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.write('shutdown');
  }

  private soon(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.write('rows');
    });
  }

  private write(why: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.added = 0;
    try {
      const head = this.head.get();
      if (!head || head.seq === this.lastSeq) return;
      const fields = { database_id: this.databaseId, seq: head.seq, hash: head.hash, at: (this.options.clock?.() ?? new Date()).toISOString(), key_id: this.key.keyId };
      const signature = sign(null, payload(fields), this.key.privateKey).toString('base64');
      appendFileSync(this.file, `${JSON.stringify({ ...fields, why, signature })}\n`, { mode: 0o600 });
      this.lastSeq = head.seq;
    } catch (error) {
      this.options.logger?.error({ err: error }, 'Could not write an audit log checkpoint; the log itself is unaffected, and the next checkpoint tries again');
    }
  }
}

/** The database's own id, made once when it was created, so a checkpoint names the file it belongs to. */
export function databaseIdOf(db: SqliteDatabase): string {
  return (db.prepare("SELECT value FROM store_meta WHERE key = 'database_id'").get() as { value: string } | undefined)?.value ?? 'unknown';
}

export type CheckpointResult =
  | { ok: true; checked: number; latest: { seq: number; at: string } | null }
  | { ok: false; checked: number; where: string; problem: string };

/**
 * Checks the log against every checkpoint in `directory`: each must verify with `key`, name this database, and find
 * its seq in the log with the same hash. Fails at the first that does not, naming it.
 */
export function verifyCheckpoints(db: SqliteDatabase, directory: string, key: VerifyingKey): CheckpointResult {
  let names: string[];
  try {
    names = readdirSync(directory).filter((name) => name.endsWith('.jsonl')).sort();
  } catch (error) {
    return { ok: false, checked: 0, where: directory, problem: `the checkpoint directory cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const databaseId = databaseIdOf(db);
  const rowAt = db.prepare<[number], { hash: string }>('SELECT hash FROM audit_log WHERE seq = ?');
  const last = (db.prepare('SELECT max(seq) AS seq FROM audit_log').get() as { seq: number | null }).seq ?? 0;
  let checked = 0;
  let latest: { seq: number; at: string } | null = null;
  for (const name of names) {
    const lines = readFileSync(join(directory, name), 'utf8').split('\n');
    for (let index = 0; index < lines.length; index++) {
      const text = lines[index]!.trim();
      if (text === '') continue;
      const where = `${join(directory, name)}:${index + 1}`;
      let line: { database_id?: unknown; seq?: unknown; hash?: unknown; at?: unknown; key_id?: unknown; signature?: unknown };
      try {
        line = JSON.parse(text) as typeof line;
      } catch {
        return { ok: false, checked, where, problem: 'not a checkpoint line (not JSON): damaged, or written by something else' };
      }
      const { database_id, seq, hash, at, key_id, signature } = line;
      if (typeof database_id !== 'string' || typeof seq !== 'number' || typeof hash !== 'string' || typeof at !== 'string' || typeof key_id !== 'string' || typeof signature !== 'string') {
        return { ok: false, checked, where, problem: 'not a checkpoint line (fields missing): damaged, or written by something else' };
      }
      const signed = verify(null, payload({ database_id, seq, hash, at, key_id }), key.publicKey, Buffer.from(signature, 'base64'));
      if (!signed) {
        return { ok: false, checked, where, problem: key_id === key.keyId ? 'its signature does not verify: the checkpoint was forged or altered' : `it is signed by key ${key_id}, not by ${key.keyId}: forged, or give the key that signed it` };
      }
      if (database_id !== databaseId) {
        return { ok: false, checked, where, problem: `it belongs to database ${database_id}, and this file is database ${databaseId}: the file was replaced by another one, or the checkpoints are another database's` };
      }
      const row = rowAt.get(seq);
      if (!row) {
        return { ok: false, checked, where, problem: `it says the log reached row ${seq} (at ${at}), but the log ends at row ${last}: rows were cut off the end, or the file was replaced by an older copy` };
      }
      if (row.hash !== hash) {
        return { ok: false, checked, where, problem: `row ${seq} has another hash than the checkpoint (at ${at}) signed: the log was rewritten from there, or the file replaced` };
      }
      checked += 1;
      if (latest === null || seq > latest.seq) latest = { seq, at };
    }
  }
  return { ok: true, checked, latest };
}
