/**
 * Single sign-on with an OpenID Connect provider (openid-client): the authorization code flow
 * with PKCE (S256), `state` and `nonce`, each checked by the library.
 *
 * 1. GET /v1/auth/oidc/login: a fresh state, nonce and PKCE verifier go into a cookie sealed with
 *    SecretBox (so any process can read it, and it binds the flow to this browser), and the
 *    browser is sent to the provider.
 * 2. GET /v1/auth/oidc/callback: the code is exchanged (client secret + verifier), the ID token
 *    checked (signature, issuer, audience, nonce), the user's groups mapped to a team and role
 *    (SHIPCLOCK_OIDC_GROUPS: the first rule naming one of the user's groups decides, "*" names
 *    anyone). The user is created on first sign-in and brought in line with the provider at
 *    every later one. The browser goes to /login#sso_code=… with a one-time code, or to
 *    /login#sso_error=<reason> (the login page explains each reason).
 * 3. POST /v1/auth/oidc/exchange {code}: the code, once and within SSO_HANDOFF_SECONDS, becomes a
 *    login token like a password sign-in's. No token ever travels in a URL.
 *
 * The provider's metadata is discovered at the first sign-in (and again after a failure), so
 * shipclock starts even while the provider is unreachable.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { recordAudit } from '../audit/record.ts';
import type { OidcConfig } from '../config.ts';
import { ShipclockError } from '../core/errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import { revokeUserApiTokens } from '../db/sql/api-tokens.ts';
import { deleteOldSsoHandoffs, insertSsoHandoff, takeSsoHandoff } from '../db/sql/sso.ts';
import {
  emailTaken, insertSsoUser, selectByOidcSubject, selectTeamByRef, selectUnlinkedByEmail, syncSsoUser,
} from '../db/sql/users.ts';
import type { Logger } from '../observability/logger.ts';
import type { SecretBox } from '../secrets/box.ts';
import type { AuthService, LoginResult } from './auth.ts';

export const SSO_COOKIE = 'shipclock_sso';
const COOKIE_PATH = '/v1/auth/oidc';
/** From "Sign in with SSO" to the provider sending the browser back. */
export const SSO_LOGIN_SECONDS = 600;
/** From the callback to the browser exchanging its one-time code. */
export const SSO_HANDOFF_SECONDS = 60;

/** Why a sign-in was refused; the login page shows a sentence for each. */
export type SsoRefusal = 'unavailable' | 'expired' | 'failed' | 'no_team' | 'no_email' | 'email_taken' | 'misconfigured';

class Refused extends Error {
  constructor(readonly reason: SsoRefusal, detail: string) {
    super(detail);
  }
}

interface Pending {
  state: string;
  nonce: string;
  verifier: string;
  /** ms since the epoch after which the callback is refused. */
  until: number;
}

export interface SsoRedirect {
  location: string;
  /** The Set-Cookie header to send with the redirect. */
  cookie: string;
}

export class OidcService {
  private configuration: Promise<oidc.Configuration> | undefined;

  constructor(
    private readonly cfg: OidcConfig,
    private readonly deps: { pool: Pool; box: SecretBox; auth: AuthService; logger: Logger; secureCookie: boolean },
  ) {}

  private config(): Promise<oidc.Configuration> {
    this.configuration ??= this.discover().catch((err: unknown) => {
      this.configuration = undefined;
      throw err;
    });
    return this.configuration;
  }

  private async discover(): Promise<oidc.Configuration> {
    // Plain http is allowed (by config validation) only for a provider on this machine.
    const insecure = new URL(this.cfg.issuer).protocol === 'http:';
    const found = await oidc.discovery(new URL(this.cfg.issuer), this.cfg.clientId, undefined, oidc.None(), insecure ? { execute: [oidc.allowInsecureRequests] } : undefined);
    const server = found.serverMetadata();
    const secret = this.cfg.clientSecret;
    // client_secret_basic is the OpenID default when the provider does not list its methods.
    const methods = server.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
    const clientAuth = !secret ? oidc.None() : methods.includes('client_secret_basic') ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret);
    const config = new oidc.Configuration(server, this.cfg.clientId, secret ? { client_secret: secret } : undefined, clientAuth);
    if (insecure) oidc.allowInsecureRequests(config);
    config.timeout = 10;
    return config;
  }

  /** Where "Sign in with SSO" sends the browser, and the cookie that remembers this attempt. */
  async start(): Promise<SsoRedirect> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch (err) {
      this.deps.logger.warn({ component: 'sso', err: (err as Error).message }, 'single sign-on: the identity provider does not answer');
      return { location: '/login#sso_error=unavailable', cookie: this.cookie('', 0) };
    }
    const pending: Pending = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
      until: Date.now() + SSO_LOGIN_SECONDS * 1000,
    };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.cfg.redirectUri,
      scope: this.cfg.scopes,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    });
    const sealed = this.deps.box.seal(JSON.stringify(pending)).toString('base64url');
    return { location: url.href, cookie: this.cookie(sealed, SSO_LOGIN_SECONDS) };
  }

  /** Handles the provider's redirect back; always ends the attempt (clears its cookie). */
  async callback(query: string, cookieHeader: string | undefined): Promise<SsoRedirect> {
    const clear = this.cookie('', 0);
    try {
      const userId = await this.signIn(query, readCookie(cookieHeader, SSO_COOKIE));
      const code = randomBytes(32).toString('base64url');
      await deleteOldSsoHandoffs(this.deps.pool, SSO_HANDOFF_SECONDS);
      await insertSsoHandoff(this.deps.pool, sha256(code), userId);
      return { location: `/login#sso_code=${code}`, cookie: clear };
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      this.deps.logger.warn({ component: 'sso', reason: err.reason, detail: err.message }, 'single sign-on refused');
      return { location: `/login#sso_error=${err.reason}`, cookie: clear };
    }
  }

  /** The one-time code from the callback, for a login token. */
  async exchange(code: string): Promise<LoginResult> {
    const userId = await takeSsoHandoff(this.deps.pool, sha256(code), SSO_HANDOFF_SECONDS);
    if (!userId) throw new ShipclockError(401, 'invalid_sso_code', 'the sign-in code is unknown, used or expired; sign in with SSO again');
    return this.deps.auth.issueFor(userId);
  }

  private async signIn(query: string, cookie: string | undefined): Promise<string> {
    const pending = this.openPending(cookie);
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch (err) {
      throw new Refused('unavailable', `discovery failed: ${(err as Error).message}`);
    }
    // Our redirect URI with the provider's answer: what the library checks it against.
    const current = new URL(this.cfg.redirectUri);
    current.search = query;
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true,
      });
    } catch (err) {
      // The library's messages name what failed (state mismatch, nonce, signature, access_denied) and never a token.
      throw new Refused('failed', `${(err as Error).name}: ${(err as Error).message}`);
    }
    const claims = tokens.claims()!;
    let groups = claimList(claims[this.cfg.groupsClaim]);
    let email = typeof claims.email === 'string' ? claims.email : undefined;
    let verified = claims.email_verified;
    if ((groups === undefined || !email) && config.serverMetadata().userinfo_endpoint) {
      try {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        groups ??= claimList(info[this.cfg.groupsClaim]);
        if (!email && typeof info.email === 'string') {
          email = info.email;
          verified = info.email_verified;
        }
      } catch (err) {
        throw new Refused('failed', `userinfo: ${(err as Error).message}`);
      }
    }
    const mine = groups ?? [];
    const rule = this.cfg.groups.find((r) => r.group === '*' || mine.includes(r.group));
    if (!rule) throw new Refused('no_team', `subject ${claims.sub} with groups [${mine.join(', ')}] matches no rule of SHIPCLOCK_OIDC_GROUPS`);
    if (!email) throw new Refused('no_email', `subject ${claims.sub} has no email claim (ask for the email scope)`);
    return this.upsertUser(claims.iss, claims.sub, email, verified === true, rule);
  }

  private openPending(cookie: string | undefined): Pending {
    if (!cookie) throw new Refused('expired', 'no sign-in cookie (started elsewhere, or it expired)');
    let p: Pending;
    try {
      p = JSON.parse(this.deps.box.open(Buffer.from(cookie, 'base64url'))) as Pending;
    } catch {
      throw new Refused('expired', 'the sign-in cookie does not open');
    }
    if (!(p.until > Date.now())) throw new Refused('expired', 'the sign-in took longer than allowed');
    return p;
  }

  /**
   * The shipclock user of this identity-provider account: found by (issuer, subject); else a
   * password user with the same email, linked only when the provider says the email is verified;
   * else created. Team and role follow the matching rule at every sign-in.
   */
  private async upsertUser(issuer: string, subject: string, email: string, emailVerified: boolean, rule: OidcConfig['groups'][number]): Promise<string> {
    const { id, changed } = await inTransaction(this.deps.pool, async (c) => {
      // Two first sign-ins of one account at once create one user.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`oidc:${issuer}:${subject}`]);
      const team = await selectTeamByRef(c, rule.team);
      if (!team) throw new Refused('misconfigured', `SHIPCLOCK_OIDC_GROUPS names team "${rule.team}" for group "${rule.group}", and no team has that name or id`);
      let user = await selectByOidcSubject(c, issuer, subject);
      let linking = false;
      if (!user) {
        const same = await selectUnlinkedByEmail(c, email);
        if (same && !emailVerified) throw new Refused('email_taken', `${subject}: a user with its email exists and the provider does not say the email is verified`);
        user = same;
        linking = same !== null;
      }
      if (!user) {
        if (await emailTaken(c, email)) throw new Refused('email_taken', `${subject}: another single-sign-on user has its email`);
        const newId = await insertSsoUser(c, { email, teamId: team.id, role: rule.role, issuer, subject });
        await recordAudit(c, { teamId: team.id, actorId: null, action: 'member.create', targetId: newId, details: { email, role: rule.role, sso: true } });
        return { id: newId, changed: false };
      }
      const teamChanged = user.team_id !== team.id;
      // A new email at the provider is taken over unless another live user has it.
      const newEmail = email.toLowerCase() !== user.email.toLowerCase() && !(await emailTaken(c, email)) ? email : user.email;
      if (!linking && !teamChanged && user.role === rule.role && newEmail === user.email) return { id: user.id, changed: false };
      await syncSsoUser(c, { id: user.id, email: newEmail, teamId: team.id, role: rule.role, issuer, subject, teamChanged });
      if (teamChanged) await revokeUserApiTokens(c, user.id);
      await recordAudit(c, {
        teamId: team.id, actorId: null, action: 'member.update', targetId: user.id,
        details: { email: newEmail, role: rule.role, previous_role: user.role, ...(teamChanged ? { previous_team_id: user.team_id } : {}), ...(linking ? { linked: true } : {}), sso: true },
      });
      return { id: user.id, changed: true };
    });
    if (changed) this.deps.auth.forgetUser(id);
    return id;
  }

  private cookie(value: string, maxAgeSeconds: number): string {
    return `${SSO_COOKIE}=${value}; Path=${COOKIE_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${this.deps.secureCookie ? '; Secure' : ''}`;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** A groups claim as a list: an array of strings, or one string. */
function claimList(v: unknown): string[] | undefined {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string') return [v];
  return undefined;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim() || undefined;
  }
  return undefined;
}
