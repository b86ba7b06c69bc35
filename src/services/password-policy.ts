/**
 * What a new password must be: at least MIN_PASSWORD_LENGTH characters, not one of the common
 * passwords people pick first, and not the user's email. (Length over composition rules, and a
 * list of known passwords: NIST SP 800-63B, 5.1.1.2.)
 *
 * The list is the "passwords-common" dictionary of @zxcvbn-ts/language-common (MIT): 49,233
 * passwords ranked by frequency in leaked password sets. Only its 308 entries of 12 characters
 * or more can meet the length rule, so only those are kept, lower-cased, compared without case.
 */
import { createRequire } from 'node:module';
import { ValidationError } from '../core/errors.ts';

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

let common: Set<string> | undefined;

/** Loaded on first use: a server that never changes a password never decompresses the list. */
function commonPasswords(): Set<string> {
  if (!common) {
    const { dictionary } = createRequire(import.meta.url)('@zxcvbn-ts/language-common') as { dictionary: { 'passwords-common': string[] } };
    common = new Set(dictionary['passwords-common'].filter((p) => [...p].length >= MIN_PASSWORD_LENGTH).map((p) => p.toLowerCase()));
  }
  return common;
}

/** Throws 422 naming `field` when `password` is too short, too common, or the email itself. */
export function checkNewPassword(password: string, email: string, field = 'new_password'): void {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new ValidationError('password_too_short', `${field} must be at least ${MIN_PASSWORD_LENGTH} characters long (it has ${length})`, field);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw new ValidationError('password_too_long', `${field} must be at most ${MAX_PASSWORD_LENGTH} characters long`, field);
  }
  const lower = password.toLowerCase();
  if (commonPasswords().has(lower)) {
    throw new ValidationError('password_too_common', `${field} is one of the most common passwords; choose another`, field);
  }
  const mail = email.toLowerCase();
  if (lower === mail || lower === mail.split('@')[0]) {
    throw new ValidationError('password_is_email', `${field} must not be your email address`, field);
  }
}

/** How many common passwords are refused (for docs and tests). */
export function commonPasswordCount(): number {
  return commonPasswords().size;
}
