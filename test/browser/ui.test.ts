/**
 * The web UI in a real browser (Debian's Chromium through playwright-core) against an in-process
 * shipclock on a fresh database. One server and one Chromium for the whole file; the tests run
 * in order and each uses its own applications so they do not see each other's rows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { startWebhookReceiver } from '../helpers/fake-webhook.ts';
import { chooseOption, launch, logIn, openTab, typeInPicker, wallTime, withScreenshot, type Tab } from './harness.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;
type Receiver = Awaited<ReturnType<typeof startWebhookReceiver>>;

const VIEWER_ZONE = 'Europe/Berlin';
const FIRST_PAGE_BUDGET = 500 * 1024;

let server: Server;
let receiver: Receiver;
let browser: Browser;
let token: string;
let teamId: string;

async function call(method: string, path: string, body?: unknown, as = token) {
  const res = await server.api(method, path, body, as);
  return res as { status: number; body: any };
}

async function createApp(name: string, url = receiver.url): Promise<string> {
  const res = await call('POST', '/v1/apps', { name, target: { type: 'webhook', url }, retry: { max_attempts: 1, backoff_seconds: 1 } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

/** The table row whose first column (the application) is `app`. */
function row(page: Page, app: string) {
  return page.locator('tbody tr.ant-table-row').filter({ has: page.locator('td:first-child a', { hasText: new RegExp(`^${app}$`) }) });
}

/** Runs a browser test body in a fresh tab; screenshot on failure; asserts no console errors. */
async function inTab(name: string, fn: (tab: Tab) => Promise<void>, opts: Parameters<typeof openTab>[1] = {}): Promise<void> {
  const tab = await openTab(browser, { timezoneId: VIEWER_ZONE, ...opts });
  try {
    await withScreenshot(tab.page, name, async () => {
      await fn(tab);
      assert.deepEqual(tab.errors, [], 'the page logged console errors');
    });
  } finally {
    await tab.context.close();
  }
}

describe('web UI', () => {
  before(async () => {
    server = await startTestServer();
    receiver = await startWebhookReceiver();
    token = await server.login(server.adminEmail, server.adminPassword);
    teamId = (await call('GET', '/v1/me')).body.team.id;
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.stop();
  });

  test('logs in with the keyboard, keeps the session across a reload, logs out', () =>
    inTab('login', async ({ page }) => {
      await page.goto(server.url + '/');
      await page.getByLabel('Email').waitFor();
      // Keyboard only: Tab reaches the fields and Enter submits.
      await page.getByLabel('Email').focus();
      await page.keyboard.type(server.adminEmail);
      await page.keyboard.press('Tab');
      await page.keyboard.type(server.adminPassword);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Deployments' }).waitFor();
      assert.match(page.url(), /\/deployments$/);

      await page.reload();
      await page.getByRole('heading', { name: 'Deployments' }).waitFor();
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('button', { name: 'Log in' }).waitFor();
      await page.reload();
      await page.getByRole('button', { name: 'Log in' }).waitFor();
    }));

  test('wrong password shows an error, not a crash', () =>
    inTab(
      'login-wrong',
      async ({ page }) => {
        await page.goto(server.url + '/');
        await page.getByLabel('Email').fill(server.adminEmail);
        await page.getByLabel('Password').fill('not-the-password');
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
      },
      // Chromium logs the 401 response itself; that one is expected here.
      { ignoreConsole: /status of 401/ },
    ));

  test('schedules with a dependency through the modal and watches it go scheduled → succeeded live', () =>
    inTab('schedule-live', async ({ page }) => {
      await createApp('db-live');
      await createApp('api-live');
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));

      await page.getByRole('button', { name: 'Schedule deployment' }).click();
      const dialog = page.getByRole('dialog', { name: 'Schedule Deployment' });
      await dialog.waitFor();
      for (const label of ['Application', 'Date', 'Time', 'Timezone', 'Dependency']) {
        await page.getByLabel(label, { exact: true }).waitFor();
      }
      // The zone defaults to the browser's.
      assert.match(await dialog.locator('.ant-form-item').filter({ has: page.getByLabel('Timezone', { exact: true }) }).innerText(), /Europe\/Berlin/);

      await chooseOption(page, 'Application', 'api-live');
      await chooseOption(page, 'Dependency', 'db-live');
      // Minute-resolution picker: the seconds come from Advanced, so the run is ~25 s away.
      const at = Date.now() + 25_000;
      const w = wallTime(at, VIEWER_ZONE);
      await typeInPicker(page, 'Date', w.date);
      await typeInPicker(page, 'Time', w.time);
      await dialog.getByText('Advanced').click();
      await page.getByLabel('Second', { exact: true }).fill(String(w.second));
      assert.equal(await page.getByLabel('Dependency lead', { exact: true }).inputValue(), '15', 'lead defaults to 15 minutes');
      await page.getByLabel('Dependency lead', { exact: true }).fill('5');
      await chooseOption(page, 'Dependency lead unit', 'seconds');

      const preview = page.getByTestId('schedule-preview');
      await preview.getByText(new Date(Math.floor(at / 1000) * 1000).toISOString().replace('.000Z', 'Z')).waitFor();
      assert.match(await preview.innerText(), /your time \(Europe\/Berlin\)/);

      await dialog.getByRole('button', { name: 'Schedule', exact: true }).click();
      await dialog.waitFor({ state: 'hidden' });

      const api = row(page, 'api-live');
      const db = row(page, 'db-live');
      await api.getByText('scheduled', { exact: true }).first().waitFor();
      assert.equal(await api.locator('td').nth(4).getByRole('link').innerText(), 'db-live');
      await db.locator('td').nth(3).getByText('succeeded', { exact: true }).waitFor({ timeout: 60_000 });
      await api.locator('td').nth(3).getByText('succeeded', { exact: true }).waitFor({ timeout: 60_000 });
      assert.equal(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload), true, 'updated without a reload');
      assert.ok(receiver.hits.length >= 2, `the webhook was called for both (${receiver.hits.length} hits)`);

      // The detail page shows the chain, the timeline and the log.
      await api.getByRole('link', { name: 'api-live' }).click();
      await page.getByRole('heading', { name: 'api-live' }).waitFor();
      await page.getByText('Dependency chain').waitFor();
      await page.locator('.ant-steps').getByRole('link', { name: 'db-live' }).waitFor();
      await page.locator('.ant-timeline').getByText('succeeded').first().waitFor();
    }));

  test('cancels a deployment from its row', () =>
    inTab('cancel', async ({ page }) => {
      const app = await createApp('cancel-me');
      const at = wallTimeFields(Date.now() + 3 * 3600_000, 'UTC');
      const res = await call('POST', '/v1/scheduled_deployments', { app, ...at, timezone: 'UTC' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      const r = row(page, 'cancel-me');
      await r.getByText('scheduled', { exact: true }).waitFor();
      await r.getByRole('button', { name: 'Cancel cancel-me' }).click();
      await page.getByRole('button', { name: 'Cancel deployment' }).click();
      await r.getByText('canceled', { exact: true }).waitFor();
      await r.getByRole('button', { name: 'Cancel cancel-me' }).waitFor({ state: 'detached' });
      assert.equal((await call('GET', `/v1/scheduled_deployments/${res.body.result.id}`)).body.result.state, 'canceled');
    }));

  test('reschedules a deployment from its row', () =>
    inTab('reschedule', async ({ page }) => {
      const app = await createApp('move-me');
      const tomorrow = wallTimeFields(Date.now() + 36 * 3600_000, 'Asia/Tokyo');
      const res = await call('POST', '/v1/scheduled_deployments', { app, ...tomorrow, hour: 10, minute: 0, second: 0, timezone: 'Asia/Tokyo' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      const r = row(page, 'move-me');
      await r.getByText('10:00 AM').waitFor();
      await r.getByRole('button', { name: 'Reschedule move-me' }).click();
      const dialog = page.getByRole('dialog', { name: 'Reschedule Deployment' });
      await dialog.waitFor();
      assert.equal(await page.getByLabel('Time', { exact: true }).inputValue(), '10:00 AM');
      await typeInPicker(page, 'Time', '11:30 AM');
      await dialog.getByRole('button', { name: 'Reschedule', exact: true }).click();
      await dialog.waitFor({ state: 'hidden' });
      await r.getByText('11:30 AM').first().waitFor();
      const after = (await call('GET', `/v1/scheduled_deployments/${res.body.result.id}`)).body.result;
      assert.deepEqual([after.local.hour, after.local.minute, after.timezone, after.state], [11, 30, 'Asia/Tokyo', 'scheduled']);
    }));

  test('flags a time skipped by daylight saving before submitting, asks earlier/later for a repeated one', () =>
    inTab('dst', async ({ page }) => {
      await createApp('dst-app');
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('button', { name: 'Schedule deployment' }).click();
      const dialog = page.getByRole('dialog', { name: 'Schedule Deployment' });
      await chooseOption(page, 'Application', 'dst-app');
      await chooseOption(page, 'Timezone', 'America/New_York');
      await typeInPicker(page, 'Date', '2027-03-14');
      await typeInPicker(page, 'Time', '2:30 AM');
      // Flagged at once, on the Time field, before any request.
      await dialog.getByText('This time does not exist in the chosen zone').waitFor();
      const timeItem = dialog.locator('.ant-form-item').filter({ has: page.getByLabel('Time', { exact: true }) });
      await timeItem.locator('.ant-form-item-explain-error').filter({ hasText: 'does not exist' }).waitFor();
      await dialog.getByRole('button', { name: 'Schedule', exact: true }).click();
      await page.waitForTimeout(300);
      assert.ok(await dialog.isVisible(), 'the modal stays open');
      const list = await call('GET', '/v1/scheduled_deployments?limit=500');
      assert.ok(!list.body.result.some((d: { app: { name: string } }) => d.app.name === 'dst-app'), 'nothing was scheduled');

      // 1:30 AM on 2027-11-07 happens twice in New York: the modal asks which.
      await typeInPicker(page, 'Date', '2027-11-07');
      await typeInPicker(page, 'Time', '1:30 AM');
      await dialog.getByText('Repeated time').waitFor();
      await dialog.getByRole('radio', { name: /Later/ }).check();
      await page.getByTestId('schedule-preview').getByText('2027-11-07T06:30:00Z').waitFor();
      await dialog.getByRole('button', { name: 'Schedule', exact: true }).click();
      await dialog.waitFor({ state: 'hidden' });
      const created = (await call('GET', '/v1/scheduled_deployments?limit=500')).body.result.find((d: { app: { name: string } }) => d.app.name === 'dst-app');
      assert.equal(created.run_at.replace('.000Z', 'Z'), '2027-11-07T06:30:00Z');
      assert.equal(created.utc_offset, '-05:00');
    }));

  test('shows a server error on the field it names', () =>
    inTab(
      'server-field-error',
      async ({ page }) => {
        await createApp('err-app');
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        // A server-only refusal (the client cannot know it): answer for the server to pin the field.
        await page.route('**/v1/scheduled_deployments', (route) =>
          route.request().method() === 'POST'
            ? route.fulfill({ status: 422, contentType: 'application/json', body: JSON.stringify({ error: { code: 'invalid_date', message: 'day is not allowed here', field: 'day' } }) })
            : route.continue(),
        );
        await page.getByRole('button', { name: 'Schedule deployment' }).click();
        const dialog = page.getByRole('dialog', { name: 'Schedule Deployment' });
        await chooseOption(page, 'Application', 'err-app');
        const w = wallTime(Date.now() + 48 * 3600_000, VIEWER_ZONE);
        await typeInPicker(page, 'Date', w.date);
        await typeInPicker(page, 'Time', '9:00 AM');
        await dialog.getByRole('button', { name: 'Schedule', exact: true }).click();
        const dateItem = dialog.locator('.ant-form-item').filter({ has: page.getByLabel('Date', { exact: true }) });
        await dateItem.locator('.ant-form-item-explain-error').filter({ hasText: 'day is not allowed here' }).waitFor();
      },
      { ignoreConsole: /status of 422/ },
    ));

  test("a viewer sees everything and no write buttons", async () => {
    const email = 'viewer@example.com';
    const password = 'viewer-password-1';
    const member = await call('POST', `/v1/teams/${teamId}/members`, { email, password, role: 'viewer' });
    assert.equal(member.status, 201, JSON.stringify(member.body));
    const app = await createApp('viewed');
    const at = wallTimeFields(Date.now() + 5 * 3600_000, 'UTC');
    assert.equal((await call('POST', '/v1/scheduled_deployments', { app, ...at, timezone: 'UTC' })).status, 201);

    await inTab('viewer', async ({ page }) => {
      await logIn(page, server.url, email, password);
      const r = row(page, 'viewed');
      await r.getByText('scheduled', { exact: true }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Schedule deployment' }).count(), 0);
      assert.equal(await page.getByRole('button', { name: /^(Cancel|Reschedule)/ }).count(), 0);
      await page.getByRole('menuitem', { name: 'Applications' }).click();
      await page.getByRole('heading', { name: 'Applications' }).waitFor();
      await page.getByRole('cell', { name: 'viewed' }).waitFor();
      assert.equal(await page.getByRole('button', { name: /Schedule deployment|Edit|Delete|New application/ }).count(), 0);
      assert.equal(await page.getByRole('menuitem', { name: 'Credentials' }).count(), 0);
    });
  });

  test('works on a narrow phone screen', () =>
    inTab(
      'narrow',
      async ({ page }) => {
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok((await overflow()) <= 1, 'no sideways scrolling of the page');
        await page.getByRole('button', { name: 'Schedule deployment' }).click();
        const dialog = page.getByRole('dialog', { name: 'Schedule Deployment' });
        for (const label of ['Application', 'Date', 'Time', 'Timezone', 'Dependency']) {
          const box = await page.getByLabel(label, { exact: true }).boundingBox();
          assert.ok(box && box.x >= 0 && box.x + box.width <= 391, `${label} fits the screen`);
        }
        await dialog.getByRole('button', { name: 'Schedule', exact: true }).waitFor();
      },
      { viewport: { width: 390, height: 844 } },
    ));

  test('the first page loads at most 500 KB of gzipped JavaScript', async (t) => {
    await inTab('budget', async ({ page }) => {
      const scripts = new Map<string, Buffer>();
      page.on('response', async (res) => {
        if (res.request().resourceType() === 'script' && res.ok()) scripts.set(res.url(), await res.body());
      });
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.waitForLoadState('networkidle');
      let gz = 0;
      let raw = 0;
      for (const body of scripts.values()) {
        raw += body.length;
        gz += zlib.gzipSync(body, { level: 9 }).length;
      }
      t.diagnostic(`first page (login + deployments): ${scripts.size} scripts, ${(raw / 1024).toFixed(1)} KB raw, ${(gz / 1024).toFixed(1)} KB gzipped`);
      assert.ok(gz <= FIRST_PAGE_BUDGET, `first page JS is ${(gz / 1024).toFixed(1)} KB gzipped, over 500 KB`);
    });
  });
});

/** {year, month, day, hour, minute, second} of an instant in `zone`, for API bodies. */
function wallTimeFields(epochMs: number, zone: string) {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' })
      .formatToParts(new Date(epochMs))
      .map((x) => [x.type, Number(x.value)]),
  ) as Record<string, number>;
  return { year: p.year, month: p.month, day: p.day, hour: p.hour % 24, minute: p.minute, second: p.second };
}
