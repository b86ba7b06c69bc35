/**
 * Removes secret material (tokens, secret keys, session tokens) from text that is about to leave
 * a provider: error messages, log lines, StepResult errors. Cloud SDK errors sometimes quote what
 * they were sent (an access key id, a canonical request), so every provider passes its error
 * text through here before returning it.
 */
import { kubernetesSecrets } from './kubeconfig.ts';

const MASK = '[REDACTED]';

export function redact(text: string, secrets: ReadonlyArray<string | undefined | null>): string {
  // Longest first, so a secret that contains another is masked whole.
  const values = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length > 0))]
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of values) {
    for (const form of new Set([s, encodeURIComponent(s)])) {
      out = out.split(form).join(MASK);
    }
  }
  return out;
}

/** The secret strings of a decrypted credential, for redact(). */
export function secretsOf(credentials: unknown): string[] {
  if (!credentials || typeof credentials !== 'object') return [];
  const c = credentials as Record<string, unknown>;
  const own = ['token', 'secret_access_key', 'session_token', 'access_key_id']
    .map((k) => c[k])
    .filter((v): v is string => typeof v === 'string' && v.length > 0);
  // A kubeconfig holds its secrets inside the document (tokens, client keys).
  return c.provider === 'kubernetes' ? [...new Set([...own, ...kubernetesSecrets(c)])] : own;
}
