/** `keys create --out FILE`: the Ed25519 key a server signs audit log checkpoints with. */
import { CheckpointKeyError, createSigningKey } from '../audit/checkpoints.js';
import { UsageError, type CommandOutput } from './output.js';

export function keysCreate(out: string | undefined, io: CommandOutput): number {
  if (out === undefined) throw new UsageError('keys create needs --out FILE: where to write the private key (it is never printed).');
  let made;
  try {
    made = createSigningKey(out);
  } catch (error) {
    if (error instanceof CheckpointKeyError) throw new UsageError(error.message);
    throw error;
  }
  io.out(`Wrote the private signing key to ${out} (mode 0600; keep it outside the database's folder and its backups).`);
  io.out(`Wrote its public key to ${out}.pub; give that to whoever checks the log (audit verify --checkpoints DIR --public-key ${out}.pub).`);
  io.out(`Key id: ${made.keyId}`);
  io.out(made.publicKeyPem.trimEnd());
  io.out('');
  io.out(`Then start the server with MOLLIE_MCP_SIGNING_KEY=${out} and MOLLIE_MCP_CHECKPOINT_DIR=<a folder outside the database's>.`);
  return 0;
}
