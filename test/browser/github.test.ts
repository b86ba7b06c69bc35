/**
 * The GitHub parts of the UI in a real browser: a github credential (token and an Enterprise
 * api_url) on the Credentials page, and a github_actions app created and edited through the app
 * form. One server and one Chromium for the file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { chooseOption, ensureUiBuilt, launch, logIn, openTab, withScreenshot } from './harness.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let browser: Browser;

describe('web UI: GitHub Actions', () => {
  before(async () => {
    ensureUiBuilt();
    server = await startTestServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('an owner stores a GitHub credential and creates and edits a github_actions app', async () => {
    const tab = await openTab(browser, { timezoneId: 'UTC' });
    const { page } = tab;
    try {
      await withScreenshot(page, 'github-forms', async () => {
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        await page.getByRole('menuitem', { name: 'Credentials' }).click();
        await page.getByRole('button', { name: 'Add credentials' }).click();
        const cdlg = page.getByRole('dialog', { name: 'Add credentials' });
        await page.getByLabel('Name', { exact: true }).fill('ghes');
        await chooseOption(page, 'Provider', 'GitHub');
        await page.getByLabel('Token', { exact: true }).fill('ghp_browserSecretToken0123456789');
        await page.getByLabel('API URL', { exact: true }).fill('http://ghe.example.com/api/v3');
        await cdlg.getByRole('button', { name: 'Add', exact: true }).click();
        // http is refused for anything but localhost: the error is on the field.
        await cdlg.getByText('api_url must be an https URL (http is allowed for localhost only)').waitFor();
        await page.getByLabel('API URL', { exact: true }).fill('https://ghe.example.com/api/v3');
        await page.getByText('api_url must be an https URL (http is allowed for localhost only)').waitFor({ state: 'detached' });
        // (by its place: right after an error, antd may briefly hide the dialog's buttons from the accessibility tree)
        await cdlg.locator('.ant-modal-footer .ant-btn-primary').click();
        await cdlg.waitFor({ state: 'hidden' });
        await page.getByRole('cell', { name: 'ghes', exact: true }).waitFor();
        await page.getByText('https://ghe.example.com/api/v3').waitFor();
        assert.ok(!(await page.content()).includes('ghp_browserSecretToken'), 'the token is not shown');

        await page.getByRole('menuitem', { name: 'Applications' }).click();
        await page.getByRole('button', { name: 'New application' }).click();
        const adlg = page.getByRole('dialog', { name: 'New application' });
        await page.getByLabel('Name', { exact: true }).fill('gh-web');
        await chooseOption(page, 'Target type', 'GitHub Actions workflow');
        await page.getByLabel('Repository', { exact: true }).fill('acme/web');
        await page.getByLabel('Workflow', { exact: true }).fill('deploy');
        await page.getByLabel('Ref', { exact: true }).fill('main');
        await adlg.getByRole('button', { name: 'Add input' }).click();
        await page.getByLabel('Input 1 name', { exact: true }).fill('environment');
        await page.getByLabel('Input 1 value', { exact: true }).fill('production');
        await chooseOption(page, 'Credentials', 'ghes');
        await adlg.getByRole('button', { name: 'Create', exact: true }).click();
        // The API's 422 names the field; the form shows it there.
        await adlg.getByText(/workflow must be a file name in \.github\/workflows/).waitFor();
        await page.getByLabel('Workflow', { exact: true }).fill('deploy.yml');
        await adlg.locator('.ant-modal-footer .ant-btn-primary').click();
        await adlg.waitFor({ state: 'hidden' });
        await page.getByRole('cell', { name: 'gh-web', exact: true }).waitFor();
        await page.getByText('acme/web · deploy.yml @ main').waitFor();

        await page.getByRole('button', { name: 'Edit gh-web' }).click();
        const edlg = page.getByRole('dialog', { name: 'Edit gh-web' });
        assert.equal(await page.getByLabel('Repository', { exact: true }).inputValue(), 'acme/web');
        assert.equal(await page.getByLabel('Input 1 value', { exact: true }).inputValue(), 'production');
        await page.getByLabel('Ref', { exact: true }).fill('release');
        await edlg.getByRole('button', { name: 'Save', exact: true }).click();
        await edlg.waitFor({ state: 'hidden' });
        const apps = (await server.api('GET', '/v1/apps', undefined, server.adminToken)).body.result as { name: string; target: Record<string, any> }[];
        const gh = apps.find((a) => a.name === 'gh-web')!;
        assert.deepEqual({ ...gh.target, credentials: typeof gh.target.credentials }, {
          type: 'github_actions', repository: 'acme/web', workflow: 'deploy.yml', ref: 'release', inputs: { environment: 'production' }, credentials: 'string',
          poll_interval_seconds: 15, timeout_seconds: 1800, // the schema's defaults
        });
        // The two refusals above are the only errors: the browser logs each 422 it was answered.
        assert.deepEqual(tab.errors.filter((e) => !/status of 422/.test(e)), [], 'the page logged console errors');
        assert.equal(tab.errors.length, 2);
      });
    } finally {
      await tab.context.close();
    }
  });
});
