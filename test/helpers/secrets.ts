/** The check the provider tests repeat: no secret of a credential in a response, a log, an error or a row. */
import assert from 'node:assert/strict';

/** Fails naming `what` (and showing the start of it) if `text` holds any of `secrets`. */
export function assertNoSecret(what: string, text: string, secrets: string[]): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `${what} holds a secret:\n${text.slice(0, 3000)}`);
}
