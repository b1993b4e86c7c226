/**
 * Sealing the fleet's shared Frame.io login before it goes into PostgreSQL: AES-256-GCM under
 * `store.secretKey`, so whoever can read the database (a backup, a DBA, a leaked dump) still cannot read a
 * token. Pure: key in, bytes in, bytes out.
 *
 * Layout: version (1 byte) ‖ IV (12 random bytes, new at every write: GCM must never reuse one under a key)
 * ‖ tag (16) ‖ ciphertext. The associated data names what the bytes are for, so a sealed value copied into
 * another column or purpose does not open there.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ERR_LOGIN_KEY_INVALID, ERR_LOGIN_UNSEALABLE } from './errors.ts';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER = 1 + IV_BYTES + TAG_BYTES;

/** `store.secretKey` (64 hex digits) → the 32-byte key. */
export function parseSecretKey(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw ERR_LOGIN_KEY_INVALID(hex.length);
  return Buffer.from(hex, 'hex');
}

export function seal(key: Buffer, plaintext: Buffer | string, aad: string, iv: Buffer = randomBytes(IV_BYTES)): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
}

/** The plaintext, or PF_ERR_FRAMEIO_LOGIN_UNSEALABLE when the key, the purpose or any byte differs. */
export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < HEADER) throw ERR_LOGIN_UNSEALABLE(`${sealed.length} bytes, shorter than the ${HEADER}-byte header`);
  if (sealed[0] !== VERSION) throw ERR_LOGIN_UNSEALABLE(`format version ${sealed[0]}, expected ${VERSION}`);
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const tag = sealed.subarray(1 + IV_BYTES, HEADER);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(HEADER)), decipher.final()]);
  } catch {
    // GCM cannot tell a wrong key from tampered bytes; the wrong key is by far the likelier.
    throw ERR_LOGIN_UNSEALABLE('authentication tag does not match');
  }
}
