/**
 * Accounts in the browser: the printed one-time password opens the change form and nothing
 * else; an owner manages members on the Members page; anyone creates (and sees once) and
 * revokes API tokens on the API tokens page.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { createLogger } from '../../src/observability/logger.ts';
import { type Shipclock, startShipclock } from '../../src/server.ts';
import { call } from '../helpers/accounts.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/server.ts';
import { chooseOption, ensureUiBuilt, launch, logIn, openTab, withScreenshot, type Tab } from './harness.ts';

const NEW_PASSWORD = 'my-own-admin-password-7';

describe('accounts in the web UI', () => {
  let db: TestDatabase;
  let sc: Shipclock;
  let browser: Browser;
  let printed: string;

  before(async () => {
    ensureUiBuilt();
    db = await createTestDatabase();
    let out = '';
    const sink = new Writable({ write(chunk, _e, cb) { out += chunk; cb(); } });
    const env = testEnv(db.url, { LOG_LEVEL: 'info' });
    delete env.SHIPCLOCK_ADMIN_EMAIL;
    delete env.SHIPCLOCK_ADMIN_PASSWORD;
    sc = await startShipclock('serve', env, createLogger('info', sink));
    printed = /one-time password (\S+)/.exec(out)![1];
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await sc?.stop();
    await db?.drop();
  });

  async function inTab(name: string, fn: (tab: Tab) => Promise<void>, opts: Parameters<typeof openTab>[1] = {}) {
    const tab = await openTab(browser, opts);
    try {
      await withScreenshot(tab.page, name, async () => {
        await fn(tab);
        assert.deepEqual(tab.errors, [], 'the page logged console errors');
      });
    } finally {
      await tab.context.close();
    }
  }

  test('the printed password opens the change form, and only it', () =>
    inTab('forced-password', async ({ page }) => {
      await page.goto(sc.url + '/');
      await page.getByLabel('Email').fill('admin@localhost');
      await page.getByLabel('Password').fill(printed);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Change your password' }).waitFor();
      await page.getByText('You signed in with the one-time password').waitFor();
      assert.equal(await page.getByRole('menuitem', { name: 'Deployments' }).count(), 0, 'no menu until it is changed');
      await page.getByLabel('Current password').fill(printed);
      await page.getByLabel('New password', { exact: true }).fill('password1234');
      await page.getByLabel('Repeat the new password').fill('password1234');
      await page.getByRole('button', { name: 'Change password' }).click();
      // The server's refusal lands on the field it names.
      await page.getByText('new_password is one of the most common passwords').waitFor();
      await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
      await page.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByRole('heading', { name: 'Deployments' }).waitFor();
    }, { ignoreConsole: /status of 422/ }));

  test('an owner adds a member, changes its role and removes it on the Members page', async () => {
    await inTab('members', async ({ page }) => {
      await logIn(page, sc.url, 'admin@localhost', NEW_PASSWORD);
      await page.getByRole('menuitem', { name: 'Members' }).click();
      await page.getByRole('heading', { name: 'Members of default' }).waitFor();
      await page.getByRole('button', { name: 'Add member' }).click();
      const dialog = page.getByRole('dialog', { name: 'Add a member' });
      await dialog.getByLabel('Email').fill('new.person@example.com');
      await dialog.getByLabel('Initial password').fill('initial-password-1');
      await chooseOption(page, 'Role', 'viewer');
      await dialog.getByRole('button', { name: 'Add' }).click();
      const row = page.locator('tbody tr').filter({ hasText: 'new.person@example.com' });
      await row.waitFor();
      await chooseOption(page, 'Role of new.person@example.com', 'deployer');
      await page.getByText('new.person@example.com is now deployer').waitFor();
      await row.getByRole('button', { name: 'Remove new.person@example.com' }).click();
      await page.getByRole('button', { name: 'Remove', exact: true }).click();
      await page.getByText('Removed new.person@example.com').waitFor();
      await row.waitFor({ state: 'detached' });
    });
    const login = await call(sc.url, 'POST', '/v1/auth/login', { body: { email: 'new.person@example.com', password: 'initial-password-1' } });
    assert.equal(login.status, 401, 'a removed member cannot sign in');
  });

  test('creates an API token (shown once), lists it and revokes it', async () => {
    let secret = '';
    await inTab('tokens', async ({ page }) => {
      await logIn(page, sc.url, 'admin@localhost', NEW_PASSWORD);
      await page.getByRole('menuitem', { name: 'API tokens' }).click();
      await page.getByRole('heading', { name: 'API tokens' }).waitFor();
      await page.getByRole('button', { name: 'New API token' }).click();
      const dialog = page.getByRole('dialog', { name: 'New API token' });
      await dialog.getByLabel('Name').fill('release pipeline');
      await chooseOption(page, 'Role', 'deployer');
      await dialog.getByRole('button', { name: 'Create' }).click();
      const shown = page.getByRole('dialog', { name: 'API token release pipeline' });
      await shown.getByText('it is shown only this once').waitFor();
      secret = (await shown.locator('code').innerText()).trim();
      assert.match(secret, /^shc_[0-9A-Za-z]{40}$/);
      await shown.getByRole('button', { name: 'Done' }).click();
      const row = page.locator('tbody tr').filter({ hasText: 'release pipeline' });
      await row.getByText('deployer').waitFor();
      await row.getByText('never').waitFor();
      // Gone once the closing dialog's animation ends (it was still there a moment after Done in one CI run).
      await shown.waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
      assert.ok(!(await page.content()).includes(secret), 'the secret is not on the page any more');
      assert.equal((await call(sc.url, 'GET', '/v1/apps', { token: secret })).status, 200);
      await row.getByRole('button', { name: 'Revoke release pipeline' }).click();
      await page.getByRole('button', { name: 'Revoke', exact: true }).click();
      await row.waitFor({ state: 'detached' });
    });
    assert.equal((await call(sc.url, 'GET', '/v1/apps', { token: secret })).status, 401);
  });
});
