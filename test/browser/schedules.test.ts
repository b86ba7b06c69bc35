/**
 * The Schedules page in a real browser: a weekday schedule created from the form, with the next
 * runs previewed live, then shown in the table with its first occurrence; pause, resume, delete.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { chooseOption, ensureUiBuilt, launch, logIn, openTab, typeInPicker, withScreenshot } from './harness.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;

let server: Server;
let browser: Browser;

/** The weekday and "H:MM AM" of an instant in a zone. */
function weekdayAndTime(iso: string, zone: string): [string, string] {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: 'numeric', minute: '2-digit' }).formatToParts(new Date(iso));
  const p = (t: string) => f.find((x) => x.type === t)?.value ?? '';
  return [p('weekday'), `${p('hour')}:${p('minute')} ${p('dayPeriod')}`];
}

describe('Schedules page', () => {
  before(async () => {
    ensureUiBuilt();
    server = await startTestServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('creates a weekday schedule from the form: live preview of the next 5 runs, then its first occurrence in the table', async () => {
    const app = await server.api('POST', '/v1/apps', { name: 'train-api', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, server.adminToken);
    assert.equal(app.status, 201);
    const tab = await openTab(browser, { timezoneId: 'Europe/Berlin' });
    const { page } = tab;
    try {
      await withScreenshot(page, 'schedules-create', async () => {
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        await page.getByRole('menuitem', { name: 'Schedules' }).click();
        await page.getByRole('heading', { name: 'Schedules' }).waitFor();
        await page.getByText('No schedules yet').waitFor();

        await page.getByRole('button', { name: 'New schedule' }).click();
        const dialog = page.getByRole('dialog', { name: 'New Schedule' });
        await dialog.waitFor();
        await chooseOption(page, 'Application', 'train-api');
        // "Every weekday at…" is the default preset.
        await typeInPicker(page, 'Time', '09:30');
        await chooseOption(page, 'Timezone', 'America/New_York');
        await dialog.getByText('30 9 * * 1-5').waitFor();

        const preview = page.getByTestId('schedule-preview');
        const items = preview.locator('.ant-list-item');
        await items.nth(4).waitFor();
        assert.equal(await items.count(), 5);
        for (let i = 0; i < 5; i++) {
          const text = await items.nth(i).innerText();
          assert.match(text, / 9:30 AM \(UTC-0[45]:00, America\/New_York\)/, text);
          assert.match(text, /your time \(Europe\/Berlin\)/);
        }

        await dialog.getByRole('button', { name: 'Create schedule' }).click();
        await dialog.waitFor({ state: 'hidden' });

        const rowEl = page.locator('tbody tr.ant-table-row').filter({ hasText: 'train-api' });
        await rowEl.waitFor();
        assert.match(await rowEl.innerText(), /30 9 \* \* 1-5/);
        assert.match(await rowEl.innerText(), /active/);
        const list = await server.api('GET', '/v1/schedules', undefined, server.adminToken);
        const s = list.body.result[0];
        const [weekday, time] = weekdayAndTime(s.next_runs[0], 'America/New_York');
        assert.ok(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].includes(weekday), weekday);
        assert.equal(time, '9:30 AM');
        // The first occurrence, in the schedule's zone and in the viewer's.
        const nextCell = await rowEl.locator('td').nth(2).innerText();
        assert.match(nextCell, /9:30 AM \(America\/New_York\)/);
        assert.match(nextCell, /your time: .*(2|3):30 PM/);

        await rowEl.getByRole('button', { name: 'Pause schedule of train-api' }).click();
        await rowEl.getByText('paused').waitFor();
        await rowEl.getByRole('button', { name: 'Resume schedule of train-api' }).click();
        await rowEl.getByText('active').waitFor();
        await rowEl.getByRole('button', { name: 'Delete schedule of train-api' }).click();
        await page.getByRole('button', { name: 'Delete', exact: true }).click();
        await page.getByText('No schedules yet').waitFor();
        assert.deepEqual(tab.errors, [], 'the page logged console errors');
      });
    } finally {
      await tab.context.close();
    }
  });

  test('a custom cron shows an error from the server in the preview', async () => {
    const tab = await openTab(browser, { timezoneId: 'Europe/Berlin', ignoreConsole: /status of 422/ });
    const { page } = tab;
    try {
      await withScreenshot(page, 'schedules-custom', async () => {
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        await page.getByRole('menuitem', { name: 'Schedules' }).click();
        await page.getByRole('heading', { name: 'Schedules' }).waitFor();
        await page.getByRole('button', { name: 'New schedule' }).click();
        const dialog = page.getByRole('dialog', { name: 'New Schedule' });
        await dialog.getByText('Custom cron').click();
        await page.getByLabel('Cron expression', { exact: true }).fill('0 9 30 2 *');
        await page.getByTestId('schedule-preview').getByText(/would never fire/).waitFor();
        await page.getByLabel('Cron expression', { exact: true }).fill('*/15 * * * *');
        await page.getByTestId('schedule-preview').locator('.ant-list-item').nth(4).waitFor();
        assert.deepEqual(tab.errors, [], 'the page logged console errors');
      });
    } finally {
      await tab.context.close();
    }
  });
});
