/**
 * Encryption at rest for secrets (webhook secrets, AWS keys, DigitalOcean tokens): AES-256-GCM
 * with a random 12-byte nonce per value. Stored layout: version byte 1 | nonce(12) | tag(16) | ciphertext.
 *
 * The key comes from SHIPCLOCK_SECRET_KEY (32 bytes, base64 or 64 hex chars) or, when unset, is
 * generated once into <dataDir>/secret.key with mode 0600. Every process on one database must
 * use the same key. Rotation: see docs/operations.md.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const VERSION = 1;

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new Error('the secret key must be 32 bytes');
    return new SecretBox(key);
  }

  /** Parses SHIPCLOCK_SECRET_KEY, or loads/generates `<dataDir>/secret.key`. */
  static load(secretKey: string | undefined, dataDir: string): SecretBox {
    if (secretKey) return SecretBox.fromKey(parseKey(secretKey));
    const file = path.join(dataDir, 'secret.key');
    if (fs.existsSync(file)) return SecretBox.fromKey(keyFromFile(file));
    fs.mkdirSync(dataDir, { recursive: true });
    const key = randomBytes(32);
    try {
      fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process on this machine generated it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return SecretBox.fromKey(keyFromFile(file));
    }
    return SecretBox.fromKey(key);
  }

  /**
   * A separate 32-byte key for another purpose (HKDF-SHA256 of the master key, `info` naming the
   * purpose), so that e.g. the HMAC key of reminder links is never the encryption key itself.
   */
  deriveKey(info: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), info, 32));
  }

  seal(plaintext: string): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), nonce, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer): string {
    if (sealed[0] !== VERSION) throw new Error('unknown secret format');
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(1, 13));
    decipher.setAuthTag(sealed.subarray(13, 29));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new Error('cannot decrypt a stored secret: SHIPCLOCK_SECRET_KEY differs from the key it was encrypted with', { cause: err });
    }
  }
}

/** The generated key file; a damaged one is named as such, not blamed on SHIPCLOCK_SECRET_KEY (which is unset). */
function keyFromFile(file: string): Buffer {
  try {
    return parseKey(fs.readFileSync(file, 'utf8').trim());
  } catch (err) {
    throw new Error(`${file} does not hold a 32-byte key (base64 or 64 hex characters): restore it from a backup, or set SHIPCLOCK_SECRET_KEY to the key the stored secrets were encrypted with`, { cause: err });
  }
}

export function parseKey(raw: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32) {
    throw new Error('SHIPCLOCK_SECRET_KEY must be 32 bytes, as base64 or 64 hex characters (generate one: openssl rand -base64 32)');
  }
  return key;
}
