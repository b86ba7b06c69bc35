/**
 * The Calendar page in a real browser (issue 11): deployments and planned occurrences in the
 * viewer's zone, moved to the right day and hour by the zone switch; deploy freezes as shaded
 * bands across the days they cover; "Subscribe" shows the feed URL once, and that URL serves
 * the iCalendar feed.
 *
 * The freezes test creates its freeze through POST /v1/freezes; until the freezes API is on the
 * branch (it answers 404), that test is skipped, saying so.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { chooseOption, ensureUiBuilt, launch, logIn, openTab, withScreenshot } from './harness.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;

let server: Server;
let browser: Browser;
const DAY = 86_400_000;

/** "YYYY-MM-DD" of an instant in a zone. */
function dateIn(ms: number, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

/** Wall-clock fields of an instant in a zone. */
function fieldsIn(ms: number, zone: string) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' })
    .formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { year: Number(p.year), month: Number(p.month), day: Number(p.day), hour: Number(p.hour) % 24, minute: Number(p.minute) };
}

/** The month grid's cell of a date (antd titles each cell with its date). */
const cell = (page: Page, date: string) => page.locator(`.ant-picker-calendar td[title="${date}"]`);

async function run(name: string, fn: (page: Page) => Promise<void>): Promise<void> {
  const tab = await openTab(browser, { timezoneId: 'Europe/Berlin' });
  try {
    await withScreenshot(tab.page, name, () => fn(tab.page));
    assert.deepEqual(tab.errors, [], 'no console errors');
  } finally {
    await tab.context.close();
  }
}

describe('Calendar page', () => {
  let appId: string;
  // Three days ahead at 23:30 UTC: 00:30 the next day in Berlin, 18:30 (or 19:30) the same day in New York.
  const base = new Date(Date.now() + 3 * DAY);
  const at = Date.UTC(base.getUTCFullYear(), base.getUTCMonth(), base.getUTCDate(), 23, 30);

  before(async () => {
    ensureUiBuilt();
    server = await startTestServer();
    browser = await launch();
    appId = (await server.api('POST', '/v1/apps', { name: 'cal-web', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, server.adminToken)).body.id;
    const u = fieldsIn(at, 'UTC');
    const r = await server.api('POST', '/v1/scheduled_deployments', { app: appId, ...u, timezone: 'UTC' }, server.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('deployments and planned occurrences in the viewer\'s zone; the zone switch moves them', () =>
    run('calendar-zones', async (page) => {
      const sc = await server.api('POST', '/v1/schedules', { app: appId, cron: '0 9 * * *', timezone: 'UTC' }, server.adminToken);
      assert.equal(sc.status, 201, JSON.stringify(sc.body));
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('menuitem', { name: 'Calendar' }).click();
      await page.getByRole('heading', { name: 'Calendar' }).waitFor();
      assert.equal(await page.getByLabel('Time zone').locator('xpath=ancestor::*[contains(@class,"ant-select")][1]').innerText(), 'Europe/Berlin', 'the browser\'s zone by default');

      const berlinDay = dateIn(at, 'Europe/Berlin');
      await cell(page, berlinDay).getByRole('link', { name: /12:30 AM cal-web/ }).waitFor();
      // Three days ahead, 09:00 UTC is beyond the 24 materialized hours: planned, at 10:00 (or 11:00) in Berlin.
      const plannedAt = Date.UTC(base.getUTCFullYear(), base.getUTCMonth(), base.getUTCDate(), 9, 0);
      const plannedTime = fieldsIn(plannedAt, 'Europe/Berlin').hour === 10 ? '10:00 AM' : '11:00 AM';
      await cell(page, dateIn(plannedAt, 'Europe/Berlin')).getByRole('link', { name: new RegExp(`${plannedTime} cal-web \\(planned\\)`) }).waitFor();

      await chooseOption(page, 'Time zone', 'America/New_York');
      const nyDay = dateIn(at, 'America/New_York');
      assert.notEqual(nyDay, berlinDay);
      const nyHour = fieldsIn(at, 'America/New_York').hour;
      await cell(page, nyDay).getByRole('link', { name: new RegExp(`${nyHour - 12}:30 PM cal-web`) }).waitFor();
      assert.equal(await cell(page, berlinDay).getByRole('link', { name: /cal-web$|cal-web scheduled/ }).count(), 0, 'no longer on the Berlin day');
      await cell(page, dateIn(plannedAt, 'America/New_York')).getByRole('link', { name: /(4|5):00 AM cal-web \(planned\)/ }).waitFor();
    }));

  test('freezes are shaded bands across the days they cover, deployments on top', async (t) => {
    // One day ahead 00:00 to three days ahead 12:00, in Berlin.
    const d1 = fieldsIn(Date.now() + DAY, 'Europe/Berlin');
    const d3 = fieldsIn(Date.now() + 3 * DAY, 'Europe/Berlin');
    const body = {
      name: 'Holiday freeze', reason: 'everyone is away', timezone: 'Europe/Berlin',
      start: { year: d1.year, month: d1.month, day: d1.day, hour: 0, minute: 0 },
      end: { year: d3.year, month: d3.month, day: d3.day, hour: 12, minute: 0 },
    };
    const r = await server.api('POST', '/v1/freezes', body, server.adminToken);
    if (r.status === 404) {
      t.skip('POST /v1/freezes answers 404: the freezes API is not on this branch yet');
      return;
    }
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await run('calendar-freezes', async (page) => {
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('menuitem', { name: 'Calendar' }).click();
      await page.getByRole('heading', { name: 'Calendar' }).waitFor();
      const pad = (n: number) => String(n).padStart(2, '0');
      const day = (f: { year: number; month: number; day: number }) => `${f.year}-${pad(f.month)}-${pad(f.day)}`;
      const d2 = fieldsIn(Date.now() + 2 * DAY, 'Europe/Berlin');
      const d0 = fieldsIn(Date.now(), 'Europe/Berlin');
      const d4 = fieldsIn(Date.now() + 4 * DAY, 'Europe/Berlin');
      await cell(page, day(d1)).getByTestId('freeze-band').waitFor();
      assert.match(await cell(page, day(d1)).getByTestId('freeze-band').innerText(), /Holiday freeze/);
      assert.equal(await cell(page, day(d2)).getByTestId('freeze-band').count(), 1);
      assert.equal(await cell(page, day(d3)).getByTestId('freeze-band').getAttribute('aria-label'), 'Freeze Holiday freeze until 12:00 PM');
      assert.equal(await cell(page, day(d0)).getByTestId('freeze-band').count(), 0, 'not before');
      assert.equal(await cell(page, day(d4)).getByTestId('freeze-band').count(), 0, 'not after');
      // The band is drawn first; the deployment of that day is listed over it.
      const berlinDay = dateIn(at, 'Europe/Berlin');
      await cell(page, berlinDay).getByRole('link', { name: /cal-web/ }).first().waitFor();
    });
  });

  test('Subscribe shows the feed URL once, and the URL serves the iCalendar feed', () =>
    run('calendar-subscribe', async (page) => {
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('menuitem', { name: 'Calendar' }).click();
      await page.getByRole('button', { name: 'Subscribe' }).click();
      const dialog = page.getByRole('dialog', { name: 'Subscribe to this calendar' });
      await dialog.waitFor();
      await dialog.getByRole('button', { name: 'Make the feed URL' }).click();
      const url = await dialog.getByLabel('Feed URL').inputValue();
      assert.match(url, /\/v1\/calendar\.ics\?token=shcal_[0-9A-Za-z]{40}$/);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /^BEGIN:VCALENDAR/);
      assert.match(text, /SUMMARY:Deploy cal-web/);

      await dialog.getByRole('button', { name: 'Close' }).first().click();
      await dialog.waitFor({ state: 'hidden' });
      await page.getByRole('button', { name: 'Subscribe' }).click();
      await dialog.getByText(/You have a feed URL since/).waitFor();
      assert.equal(await dialog.getByLabel('Feed URL').count(), 0, 'never shown again');
      await dialog.getByRole('button', { name: 'Revoke the feed URL' }).click();
      await dialog.getByRole('button', { name: 'Make the feed URL' }).waitFor();
      assert.equal((await fetch(url)).status, 401);
    }));
});
