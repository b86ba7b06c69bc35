/**
 * Deploy freezes in a real browser: the Schedule Deployment form warns before submitting when the
 * chosen time is frozen and "Use next allowed time" moves it to the freeze's end; the Freezes page
 * lists, creates and deletes freezes; a held deployment shows `held` and an owner releases it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { chooseOption, ensureUiBuilt, launch, logIn, openTab, typeInPicker, withScreenshot, type Tab } from './harness.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;

let server: Server;
let browser: Browser;

const call = (method: string, path: string, body?: unknown) => server.api(method, path, body, server.adminToken);
async function createApp(name: string): Promise<string> {
  const r = await call('POST', '/v1/apps', { name, target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

async function inTab(name: string, fn: (tab: Tab) => Promise<void>): Promise<void> {
  const tab = await openTab(browser, { timezoneId: 'Europe/Berlin' });
  try {
    await withScreenshot(tab.page, name, async () => {
      await fn(tab);
      assert.deepEqual(tab.errors, [], 'the page logged console errors');
    });
  } finally {
    await tab.context.close();
  }
}

describe('freezes in the UI', () => {
  before(async () => {
    ensureUiBuilt();
    server = await startTestServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the schedule form warns about a frozen time and "Use next allowed time" moves it to the freeze\'s end', () =>
    inTab('freeze-warning', async ({ page }) => {
      const appId = await createApp('frozen-api');
      const f = await call('POST', '/v1/freezes', {
        name: 'Launch week', start: { year: 2027, month: 5, day: 10, hour: 10, minute: 0 }, end: { year: 2027, month: 5, day: 10, hour: 14, minute: 0 },
        timezone: 'Europe/Berlin', apps: [appId], reason: 'big launch',
      });
      assert.equal(f.status, 201, JSON.stringify(f.body));
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('button', { name: 'Schedule deployment' }).click();
      const dialog = page.getByRole('dialog', { name: 'Schedule Deployment' });
      await dialog.waitFor();
      await chooseOption(page, 'Application', 'frozen-api');
      await typeInPicker(page, 'Date', '2027-05-10');
      await typeInPicker(page, 'Time', '11:00 AM');
      const warning = page.getByTestId('freeze-warning');
      await warning.waitFor();
      const text = await warning.innerText();
      assert.match(text, /This time is inside the deploy freeze “Launch week”/);
      assert.match(text, /\(big launch\), which ends 2027-05-10 14:00 Europe\/Berlin/);
      assert.match(text, /Next allowed time:/);
      // An owner may override: the reason field is offered.
      await page.getByLabel('Override freeze (reason)').waitFor();

      await warning.getByRole('button', { name: 'Use next allowed time' }).click();
      await warning.waitFor({ state: 'hidden' });
      assert.equal(await page.getByLabel('Time', { exact: true }).inputValue(), '2:00 PM');
      assert.equal(await page.getByLabel('Date', { exact: true }).inputValue(), '2027-05-10');
      await page.getByTestId('schedule-preview').getByText('2027-05-10T12:00:00Z').waitFor();
      await dialog.getByRole('button', { name: 'Schedule', exact: true }).click();
      await dialog.waitFor({ state: 'hidden' });
      const list = (await call('GET', `/v1/scheduled_deployments?app=${appId}`)).body.result;
      assert.equal(list.length, 1);
      assert.equal(list[0].run_at, '2027-05-10T12:00:00.000Z');
      assert.equal(list[0].state, 'scheduled');
    }));

  test('the Freezes page lists, creates and deletes freezes; a held deployment shows held and is released by an owner', () =>
    inTab('freezes-page', async ({ page }) => {
      const appId = await createApp('held-api');
      const d = await call('POST', '/v1/scheduled_deployments', { app: appId, year: 2027, month: 12, day: 24, hour: 18, minute: 0, timezone: 'Europe/Berlin' });
      assert.equal(d.status, 201);
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('menuitem', { name: 'Freezes' }).click();
      await page.getByRole('heading', { name: 'Freezes' }).waitFor();
      await page.locator('tbody tr.ant-table-row').filter({ hasText: 'Launch week' }).waitFor();

      await page.getByRole('button', { name: 'New freeze' }).click();
      const dialog = page.getByRole('dialog', { name: 'New freeze' });
      await dialog.waitFor();
      await page.getByLabel('Name', { exact: true }).fill('Christmas');
      await typeInPicker(page, 'From', '2027-12-24 00:00');
      await typeInPicker(page, 'To', '2027-12-27 08:00');
      await chooseOption(page, 'Applications', 'held-api');
      await page.getByLabel('Reason', { exact: true }).fill('holidays');
      await dialog.getByRole('button', { name: 'Create freeze' }).click();
      await dialog.waitFor({ state: 'hidden' });
      // The deployment already scheduled inside it is now held, and said so.
      const info = page.locator('.ant-modal-confirm').filter({ hasText: '1 scheduled deployment(s) are now held' });
      await info.waitFor();
      assert.match(await info.innerText(), /held-api · 2027-12-24 6:00 PM/);
      await info.getByRole('button', { name: 'OK' }).click();
      const row = page.locator('tbody tr.ant-table-row').filter({ hasText: 'Christmas' });
      await row.waitFor();
      assert.match(await row.innerText(), /2027-12-24/);
      assert.match(await row.innerText(), /held-api/);
      const freezes = (await call('GET', '/v1/freezes')).body.result;
      const xmas = freezes.find((x: { name: string }) => x.name === 'Christmas');
      assert.equal(xmas.start_at, '2027-12-23T23:00:00.000Z');

      await page.goto(`${server.url}/deployments/${d.body.result.id}`);
      await page.getByRole('heading', { name: 'held-api' }).waitFor();
      await page.locator('[data-state="held"]').first().waitFor();
      await page.getByText('Held by a deploy freeze').waitFor();
      await page.getByRole('button', { name: 'Release' }).click();
      const rel = page.getByRole('dialog', { name: 'Release held deployment' });
      await rel.waitFor();
      await page.getByLabel('Reason').fill('Santa needs it');
      await rel.getByRole('button', { name: 'Release' }).click();
      await rel.waitFor({ state: 'hidden' });
      await page.locator('[data-state="scheduled"]').first().waitFor();
      assert.equal((await call('GET', `/v1/scheduled_deployments/${d.body.result.id}`)).body.result.state, 'scheduled');

      await page.getByRole('menuitem', { name: 'Freezes' }).click();
      await page.getByRole('button', { name: 'Delete freeze Christmas' }).click();
      await page.getByRole('button', { name: 'Delete', exact: true }).click();
      await row.waitFor({ state: 'detached' });
    }));
});
