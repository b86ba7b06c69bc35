/** Opaque keyset cursors: base64url of JSON. A cursor that does not decode answers 400 naming `cursor`. */
import { ValidationError } from '../core/errors.ts';

export function encodeCursor(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, check: (v: any) => boolean): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (check(v)) return v as T;
  } catch { /* fall through */ }
  throw new ValidationError('invalid_cursor', 'cursor is not one this API returned', 'cursor', 400);
}

/** Fetch limit+1 rows, return `limit` and whether there is more. */
export function page<T>(rows: T[], limit: number, key: (last: T) => unknown): { result: T[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const result = more ? rows.slice(0, limit) : rows;
  return { result, next_cursor: more ? encodeCursor(key(result[result.length - 1])) : null };
}
