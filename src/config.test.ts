import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

const GROUPS = JSON.stringify([{ group: 'platform', team: 'default', role: 'owner' }]);
const OIDC = { SHIPCLOCK_OIDC_ISSUER: 'https://id.example.com', SHIPCLOCK_OIDC_CLIENT_ID: 'shipclock', SHIPCLOCK_OIDC_GROUPS: GROUPS, SHIPCLOCK_PUBLIC_URL: 'https://shipclock.example.com' };

function fails(env: NodeJS.ProcessEnv, variable: string): void {
  assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && err.message.includes(variable), variable);
}

test('LOG_FORMAT is json or pretty', () => {
  assert.equal(loadConfig({ LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
  assert.equal(loadConfig({ LOG_FORMAT: 'json' }).logFormat, 'json');
  fails({ LOG_FORMAT: 'yaml' }, 'LOG_FORMAT');
});

test('SHIPCLOCK_PUBLIC_URL is an absolute http(s) origin', () => {
  assert.equal(loadConfig({ SHIPCLOCK_PUBLIC_URL: 'https://shipclock.example.com/' }).publicUrl, 'https://shipclock.example.com');
  assert.equal(loadConfig({ SHIPCLOCK_PUBLIC_URL: 'http://127.0.0.1:8080' }).publicUrl, 'http://127.0.0.1:8080');
  for (const bad of ['shipclock.example.com', 'ftp://x.example.com', 'https://x.example.com/app', 'https://x.example.com/?a=1', 'https://x.example.com/#x', 'https://u:p@x.example.com']) {
    fails({ SHIPCLOCK_PUBLIC_URL: bad }, 'SHIPCLOCK_PUBLIC_URL');
  }
});

test('login limits have defaults and bounds', () => {
  assert.deepEqual(loadConfig({}).loginLimits, { perEmail: 10, perAddress: 100, windowSeconds: 900 });
  fails({ SHIPCLOCK_LOGIN_MAX_FAILURES_PER_EMAIL: '0' }, 'SHIPCLOCK_LOGIN_MAX_FAILURES_PER_EMAIL');
  fails({ SHIPCLOCK_LOGIN_FAILURE_WINDOW_SECONDS: 'soon' }, 'SHIPCLOCK_LOGIN_FAILURE_WINDOW_SECONDS');
});

test('single sign-on: off without an issuer; each wrong setting names its variable', () => {
  assert.equal(loadConfig({}).oidc, undefined);
  const c = loadConfig(OIDC)!.oidc!;
  assert.equal(c.redirectUri, 'https://shipclock.example.com/v1/auth/oidc/callback');
  assert.equal(c.groupsClaim, 'groups');
  assert.equal(c.scopes, 'openid email profile');
  assert.deepEqual(c.groups, [{ group: 'platform', team: 'default', role: 'owner' }]);
  assert.equal(loadConfig({ ...OIDC, SHIPCLOCK_OIDC_ISSUER: 'http://localhost:9000' }).oidc!.issuer, 'http://localhost:9000');

  fails({ ...OIDC, SHIPCLOCK_OIDC_ISSUER: 'http://id.example.com' }, 'SHIPCLOCK_OIDC_ISSUER');
  fails({ ...OIDC, SHIPCLOCK_OIDC_CLIENT_ID: '' }, 'SHIPCLOCK_OIDC_CLIENT_ID');
  fails({ ...OIDC, SHIPCLOCK_PUBLIC_URL: '' }, 'SHIPCLOCK_PUBLIC_URL');
  fails({ ...OIDC, SHIPCLOCK_OIDC_GROUPS: '' }, 'SHIPCLOCK_OIDC_GROUPS');
  fails({ ...OIDC, SHIPCLOCK_OIDC_GROUPS: '{"platform":"owner"}' }, 'SHIPCLOCK_OIDC_GROUPS');
  fails({ ...OIDC, SHIPCLOCK_OIDC_GROUPS: 'not json' }, 'SHIPCLOCK_OIDC_GROUPS');
  fails({ ...OIDC, SHIPCLOCK_OIDC_GROUPS: JSON.stringify([{ group: 'x', team: 'default', role: 'admin' }]) }, 'SHIPCLOCK_OIDC_GROUPS[0].role');
  fails({ ...OIDC, SHIPCLOCK_OIDC_GROUPS: JSON.stringify([{ group: 'x', role: 'viewer' }]) }, 'SHIPCLOCK_OIDC_GROUPS[0].team');
  fails({ ...OIDC, SHIPCLOCK_OIDC_SCOPES: 'email profile' }, 'SHIPCLOCK_OIDC_SCOPES');
  fails({ SHIPCLOCK_OIDC_CLIENT_ID: 'x' }, 'SHIPCLOCK_OIDC_CLIENT_ID');
});
