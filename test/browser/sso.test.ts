/**
 * Single sign-on end to end in Chromium, against a real OpenID provider started here
 * (oidc-provider, a certified implementation, with its development login and consent pages):
 * "Sign in with SSO" → the provider → back with a code (PKCE, state, nonce) → a session; a user
 * whose groups map to no team is refused with a page that says so. Nothing secret in the logs.
 *
 * shipclock sits behind a small TCP proxy whose address is its SHIPCLOCK_PUBLIC_URL (as behind a
 * load balancer): the provider must know the redirect URI before shipclock starts, and every
 * server here listens on port 0.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import Provider from 'oidc-provider';
import { createLogger } from '../../src/observability/logger.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureUiBuilt, launch, openTab, withScreenshot } from './harness.ts';

const CLIENT_ID = 'shipclock-test';
const CLIENT_SECRET = 'client-secret-never-logged-9f3b';
/** The provider's accounts: login name → groups. */
const GROUPS: Record<string, string[]> = { alice: ['developers', 'everyone'], mallory: ['contractors', 'everyone'] };

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

describe('single sign-on (OIDC)', () => {
  let proxy: net.Server;
  let idp: http.Server;
  let s: TestServer;
  let browser: Browser;
  let logs = '';
  let target = 0;

  before(async () => {
    ensureUiBuilt();
    proxy = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    const publicUrl = `http://127.0.0.1:${await listen(proxy)}`;

    let handler: http.RequestListener = (_req, res) => res.end();
    idp = http.createServer((req, res) => handler(req, res));
    const issuer = `http://127.0.0.1:${await listen(idp)}`;
    const provider = new Provider(issuer, {
      clients: [{
        client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${publicUrl}/v1/auth/oidc/callback`],
        grant_types: ['authorization_code'], response_types: ['code'],
      }],
      claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
      cookies: { keys: ['test-cookie-key-1'] },
      ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
      pkce: { required: () => true, methods: ['S256'] },
      findAccount: (_ctx: unknown, id: string) => ({
        accountId: id,
        claims: () => ({ sub: id, email: `${id}@example.com`, email_verified: true, groups: GROUPS[id] ?? [] }),
      }),
    });
    handler = provider.callback();

    const sink = new Writable({ write(chunk, _e, cb) { logs += chunk; cb(); } });
    s = await startTestServer({
      logger: createLogger('debug', sink),
      env: {
        LOG_LEVEL: 'debug',
        SHIPCLOCK_PUBLIC_URL: publicUrl,
        SHIPCLOCK_OIDC_ISSUER: issuer,
        SHIPCLOCK_OIDC_CLIENT_ID: CLIENT_ID,
        SHIPCLOCK_OIDC_CLIENT_SECRET: CLIENT_SECRET,
        SHIPCLOCK_OIDC_SCOPES: 'openid email groups',
        // First match wins: platform people own the team, developers deploy; contractors get nothing.
        SHIPCLOCK_OIDC_GROUPS: JSON.stringify([
          { group: 'platform', team: 'default', role: 'owner' },
          { group: 'developers', team: 'default', role: 'deployer' },
        ]),
      },
    });
    target = Number(new URL(s.url).port);
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await s?.stop();
    idp?.closeAllConnections();
    idp?.close();
    proxy?.close();
  });

  /** Through the provider's development pages: any login name, then consent. */
  async function signInAt(page: import('playwright-core').Page, login: string) {
    await page.goto(`${s.sc.config.publicUrl}/login`);
    await page.getByRole('link', { name: 'Sign in with SSO' }).click();
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('anything');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  test('signs a mapped user in (created on first sign-in with the mapped role), and again later', async () => {
    const tab = await openTab(browser);
    try {
      await withScreenshot(tab.page, 'sso-alice', async () => {
        await signInAt(tab.page, 'alice');
        await tab.page.getByRole('heading', { name: 'Deployments' }).waitFor();
        await tab.page.getByText('alice@example.com · default · deployer').waitFor();
        // The one-time code left the address bar.
        assert.equal(new URL(tab.page.url()).hash, '');
        assert.equal(await tab.page.getByRole('button', { name: 'Password' }).count(), 0, 'no password to change');
      });
    } finally {
      await tab.context.close();
    }
    const users = (await s.db.pool.query(`SELECT email, role, password_hash, oidc_subject FROM users WHERE email = 'alice@example.com'`)).rows;
    assert.deepEqual(users, [{ email: 'alice@example.com', role: 'deployer', password_hash: null, oidc_subject: 'alice' }]);
    // A second sign-in finds the same user.
    const again = await openTab(browser);
    try {
      await withScreenshot(again.page, 'sso-alice-again', async () => {
        await signInAt(again.page, 'alice');
        await again.page.getByRole('heading', { name: 'Deployments' }).waitFor();
      });
    } finally {
      await again.context.close();
    }
    assert.equal((await s.db.pool.query(`SELECT count(*)::int AS n FROM users WHERE email = 'alice@example.com'`)).rows[0].n, 1);
    // An SSO user has no password to sign in with.
    assert.equal((await s.api('POST', '/v1/auth/login', { email: 'alice@example.com', password: 'anything' })).status, 401);
  });

  test('refuses a user whose groups map to no team, with a page that says why', async () => {
    const tab = await openTab(browser);
    try {
      await withScreenshot(tab.page, 'sso-mallory', async () => {
        await signInAt(tab.page, 'mallory');
        await tab.page.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
        await tab.page.getByText('Your account has no access to shipclock').waitFor();
        await tab.page.getByRole('button', { name: 'Back to sign in' }).click();
        await tab.page.getByRole('link', { name: 'Sign in with SSO' }).waitFor();
      });
    } finally {
      await tab.context.close();
    }
    assert.equal((await s.db.pool.query(`SELECT count(*)::int AS n FROM users WHERE email = 'mallory@example.com'`)).rows[0].n, 0, 'no user created');
    assert.match(logs, /single sign-on refused/);
    assert.match(logs, /"reason":"no_team"/);
  });

  test('refuses an answer whose state is not the one this browser was given', async () => {
    const tab = await openTab(browser);
    try {
      await withScreenshot(tab.page, 'sso-state', async () => {
        await tab.page.goto(`${s.sc.config.publicUrl}/login`);
        await tab.page.getByRole('link', { name: 'Sign in with SSO' }).click();
        await tab.page.locator('input[name="login"]').waitFor();
        // The sign-in cookie is set; an answer made up for another attempt comes back.
        await tab.page.goto(`${s.sc.config.publicUrl}/v1/auth/oidc/callback?code=made-up&state=someone-elses`);
        await tab.page.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
        await tab.page.getByText('The sign-in did not complete').waitFor();
      });
    } finally {
      await tab.context.close();
    }
    assert.match(logs, /"reason":"failed"/);
  });

  test('refuses a callback without the browser\'s sign-in cookie (state bound to the browser), and a used code', async () => {
    const cb = await fetch(`${s.sc.config.publicUrl}/v1/auth/oidc/callback?code=forged&state=forged`, { redirect: 'manual' });
    assert.equal(cb.status, 302);
    assert.equal(cb.headers.get('location'), '/login#sso_error=expired');
    const ex = await s.api('POST', '/v1/auth/oidc/exchange', { code: 'not-a-code' });
    assert.equal(ex.status, 401);
    assert.equal(ex.body.error.code, 'invalid_sso_code');
  });

  test('never logs the client secret, a code or a token', () => {
    assert.ok(logs.length > 0);
    assert.ok(!logs.includes(CLIENT_SECRET), 'client secret in the logs');
    assert.ok(!/sso_code=|access_token"?:\s*"ey|"code":"[A-Za-z0-9_-]{20,}/.test(logs), 'a code or token in the logs');
  });
});
