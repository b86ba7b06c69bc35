/**
 * Cloud credentials, encrypted at rest (SecretBox). The API never returns the secret fields; an
 * AWS key id is shown masked to its last four characters, a Kubernetes credential by its server
 * URL and kubeconfig context.
 */
import { recordAudit } from '../audit/record.ts';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { checkCaCertificate, checkKubeconfig, checkServerUrl, KubeconfigError } from '../providers/kubeconfig.ts';
import type { Credentials } from '../providers/types.ts';
import type { SecretBox } from '../secrets/box.ts';
import type { User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';

export type CredentialInput =
  | { name: string; provider: 'aws'; access_key_id: string; secret_access_key: string; session_token?: string }
  | { name: string; provider: 'digitalocean'; token: string }
  | { name: string; provider: 'github'; token: string; api_url?: string }
  | { name: string; provider: 'kubernetes'; kubeconfig?: string; server?: string; token?: string; ca_certificate?: string };

type ProviderName = CredentialInput['provider'];

interface Row { id: string; name: string; provider: ProviderName; public: Record<string, string>; created_at: Date }


/**
 * What of a credential may be shown: an AWS key id masked to its last 4 characters; a GitHub
 * Enterprise API URL; a Kubernetes
 * server URL and context. Checks a Kubernetes credential first (422 naming the field; the message
 * never quotes the secret material).
 */
function publicPart(input: CredentialInput): Record<string, string> {
  if (input.provider === 'aws') return { access_key_id: `****${input.access_key_id.slice(-4)}` };
  if (input.provider === 'github') return input.api_url ? { api_url: input.api_url } : {};
  if (input.provider !== 'kubernetes') return {};
  const fail = (field: string, err: unknown): never => {
    if (err instanceof KubeconfigError) throw new ValidationError('invalid_credential', err.message, field);
    throw err;
  };
  if (input.kubeconfig !== undefined) {
    for (const k of ['server', 'token', 'ca_certificate'] as const) {
      if (input[k] !== undefined) throw new ValidationError('invalid_credential', `give either kubeconfig, or server and token (with ca_certificate), not both`, k);
    }
    try {
      const s = checkKubeconfig(input.kubeconfig);
      return { server: s.server, context: s.context };
    } catch (err) {
      return fail('kubeconfig', err);
    }
  }
  if (input.server === undefined) throw new ValidationError('invalid_credential', 'a kubernetes credential needs kubeconfig, or server and token', 'kubeconfig');
  if (input.token === undefined) throw new ValidationError('invalid_credential', 'a kubernetes credential with server needs token', 'token');
  let server = '';
  try {
    server = checkServerUrl(input.server);
  } catch (err) {
    fail('server', err);
  }
  try {
    if (input.ca_certificate !== undefined) checkCaCertificate(input.ca_certificate);
  } catch (err) {
    fail('ca_certificate', err);
  }
  return { server };
}

function toApi(r: Row) {
  return { id: r.id, name: r.name, provider: r.provider, ...r.public, created_at: r.created_at.toISOString() };
}

/**
 * A GitHub Enterprise Server API root: an https URL without credentials, query or fragment (http
 * only for localhost, where a test or a local proxy listens). Returned without a trailing slash.
 */
export function githubApiUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ValidationError('invalid_api_url', 'api_url must be an absolute URL, e.g. https://ghe.example.com/api/v3', 'api_url');
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && local)) {
    throw new ValidationError('invalid_api_url', 'api_url must be an https URL (http is allowed for localhost only)', 'api_url');
  }
  if (u.username || u.password || u.search || u.hash) {
    throw new ValidationError('invalid_api_url', 'api_url must not carry credentials, a query or a fragment', 'api_url');
  }
  return u.toString().replace(/\/+$/, '');
}

export async function createCredential(pool: Pool, box: SecretBox, actor: User, input: CredentialInput) {
  if (input.provider === 'github' && input.api_url !== undefined) input = { ...input, api_url: githubApiUrl(input.api_url) };
  const { name, provider, ...secret } = input;
  const pub = publicPart(input);
  return inTransaction(pool, async (c) => {
    const dup = await c.query('SELECT 1 FROM credentials WHERE team_id = $1 AND name = $2', [actor.team_id, name]);
    if (dup.rowCount) throw new ConflictError('name_taken', `a credential named "${name}" exists`, 'name');
    // ON CONFLICT: two creates of one name at once both pass the check above; the second is a 409, not a 500.
    const r = await c.query<Row>(
      `INSERT INTO credentials (team_id, name, provider, public, secret) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (team_id, name) DO NOTHING
       RETURNING id, name, provider, public, created_at`,
      [actor.team_id, name, provider, pub, box.seal(JSON.stringify({ provider, ...secret }))],
    );
    if (!r.rowCount) throw new ConflictError('name_taken', `a credential named "${name}" exists`, 'name');
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'credential.create', targetId: r.rows[0].id, details: { name, provider } });
    return toApi(r.rows[0]);
  });
}

export async function listCredentials(pool: Pool, actor: User, limit: number, cursor?: string) {
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2);
  const r = await pool.query<Row>(
    `SELECT id, name, provider, public, created_at FROM credentials
      WHERE team_id = $1 AND ($2::text IS NULL OR (name, id::text) > ($2, $3)) ORDER BY name, id LIMIT $4`,
    [actor.team_id, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
  );
  const p = page(r.rows, limit, (x) => [x.name, x.id]);
  return { result: p.result.map(toApi), next_cursor: p.next_cursor };
}

export async function getCredential(pool: Pool, actor: User, id: string) {
  const r = await pool.query<Row>('SELECT id, name, provider, public, created_at FROM credentials WHERE id = $1 AND team_id = $2', [id, actor.team_id]);
  if (!r.rowCount) throw new NotFoundError('credential');
  return toApi(r.rows[0]);
}

export async function deleteCredential(pool: Pool, actor: User, id: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    const r = await c.query<Row>('SELECT id, name, provider FROM credentials WHERE id = $1 AND team_id = $2 FOR UPDATE', [id, actor.team_id]);
    if (!r.rowCount) throw new NotFoundError('credential');
    const users = await c.query<{ name: string }>(
      `SELECT name FROM apps WHERE team_id = $1 AND deleted_at IS NULL AND target->>'credentials' = $2 ORDER BY name`,
      [actor.team_id, id],
    );
    if (users.rowCount) {
      throw new ConflictError('credential_in_use', `the credential is used by app${users.rowCount > 1 ? 's' : ''} ${users.rows.map((u) => u.name).join(', ')}`);
    }
    await c.query('DELETE FROM credentials WHERE id = $1', [id]);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'credential.delete', targetId: id, details: { name: r.rows[0].name } });
  });
}

/** Checks that `id` is a credential of the team for `provider`; the field is named in the error. */
export async function assertCredential(db: Queryable, teamId: string, id: string, provider: ProviderName): Promise<void> {
  // FOR SHARE: a concurrent deleteCredential (which locks the row FOR UPDATE) waits for this app to
  // be written and then sees it (409), or has deleted it first and this finds none (422) — never an
  // app naming a credential that is gone.
  const r = await db.query<{ provider: string }>('SELECT provider FROM credentials WHERE id = $1 AND team_id = $2 FOR SHARE', [id, teamId]);
  if (!r.rowCount) throw new ValidationError('unknown_credential', `no credential ${id} in your team`, 'target.credentials');
  if (r.rows[0].provider !== provider) {
    throw new ConflictError('wrong_credential_provider', `the credential is for ${r.rows[0].provider}, this target needs ${provider}`, 'target.credentials');
  }
}

/** Decrypts a credential for one provider call (the scheduler's use only). */
export async function loadCredentials(db: Queryable, box: SecretBox, teamId: string, id: string): Promise<Credentials> {
  const r = await db.query<{ secret: Buffer }>('SELECT secret FROM credentials WHERE id = $1 AND team_id = $2', [id, teamId]);
  if (!r.rowCount) throw new Error('the credential this app uses was deleted');
  return JSON.parse(box.open(r.rows[0].secret)) as Credentials;
}
