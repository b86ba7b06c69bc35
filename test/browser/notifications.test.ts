/**
 * The Notifications page in a real browser: an owner creates a subscription with a reminder
 * lead, sees it in the table, and turns reminders off again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { ensureUiBuilt, launch, logIn, openTab, withScreenshot } from './harness.ts';

describe('Notifications page', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let browser: Browser;
  before(async () => {
    ensureUiBuilt();
    server = await startTestServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('creates a subscription with a 15-minute reminder lead, then turns reminders off', async () => {
    const tab = await openTab(browser);
    const { page } = tab;
    try {
      await withScreenshot(page, 'notifications-reminder', async () => {
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        await page.getByRole('menuitem', { name: 'Notifications' }).click();
        await page.getByRole('heading', { name: 'Notifications' }).waitFor();
        await page.getByRole('button', { name: 'New subscription' }).click();
        await page.getByLabel('URL').fill('https://hooks.example.com/services/T0/B0/secretpart');
        await page.getByText('Remind before each deployment').click();
        const lead = page.getByLabel('Reminder lead (minutes)');
        await lead.fill('15');
        await page.getByRole('button', { name: 'Create' }).click();
        await page.getByRole('cell', { name: '15 min before' }).waitFor();
        const subs = (await server.api('GET', '/v1/notifications', undefined, server.adminToken)).body.result;
        assert.equal(subs.length, 1);
        assert.equal(subs[0].remind_before_seconds, 900);
        assert.deepEqual(subs[0].events, ['failed', 'missed']);

        await page.getByRole('button', { name: 'Edit hooks.example.com' }).click();
        await page.getByText('Remind before each deployment').click();
        await page.getByRole('button', { name: 'Save' }).click();
        await page.getByRole('cell', { name: 'off' }).waitFor();
        assert.equal((await server.api('GET', '/v1/notifications', undefined, server.adminToken)).body.result[0].remind_before_seconds, null);
        assert.deepEqual(tab.errors, [], 'the page logged console errors');
      });
    } finally {
      await tab.context.close();
    }
  });
});
