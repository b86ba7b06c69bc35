/**
 * Shared set-up for the browser tests: a Chromium (SHIPCLOCK_CHROMIUM, a system one, or the one
 * shipped in the @sparticuz/chromium devDependency: ./chromium.ts) driven by playwright-core
 * (headless, no network beyond the test server), the UI built on demand, console errors
 * collected, and a screenshot saved to test-results/ when a test fails.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { findChromium } from './chromium.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Builds dist/web once if it is missing (CI runs the tests on a fresh checkout). */
export function ensureUiBuilt(): void {
  if (fs.existsSync(path.join(repoRoot, 'dist/web/index.html'))) return;
  execFileSync('npm', ['run', 'build:web'], { cwd: repoRoot, stdio: 'inherit' });
}

export async function launch(): Promise<Browser> {
  const binary = await findChromium();
  ensureUiBuilt();
  return chromium.launch({ executablePath: binary.path, args: CHROMIUM_ARGS, headless: true, env: { ...process.env, ...binary.env } as Record<string, string> });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** console.error messages and uncaught page errors seen so far. */
  errors: string[];
}

/**
 * A fresh context (own localStorage) and page. `timezoneId` fixes the viewer's zone so the
 * expectations about "your time" do not depend on the machine running the tests.
 */
export async function openTab(
  browser: Browser,
  opts: { viewport?: { width: number; height: number }; timezoneId?: string; ignoreConsole?: RegExp } = {},
): Promise<Tab> {
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    timezoneId: opts.timezoneId ?? 'Europe/Berlin',
    locale: 'en-US',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !(opts.ignoreConsole && opts.ignoreConsole.test(m.text()))) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return { context, page, errors };
}

/**
 * Runs `fn`; if it throws, saves a full-page screenshot as test-results/<name>.png and rethrows.
 */
export async function withScreenshot<T>(page: Page, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const dir = path.join(repoRoot, 'test-results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${name.replace(/[^a-z0-9_-]+/gi, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    if (err instanceof Error) err.message += `\n(screenshot: ${path.relative(repoRoot, file)})`;
    throw err;
  }
}

/** Logs in through the form and waits for the deployments page. */
export async function logIn(page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(baseUrl + '/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Deployments' }).waitFor();
}

/** Picks an option of an antd Select found by its label: types to search, then chooses the option. */
export async function chooseOption(page: Page, label: string, option: string): Promise<void> {
  const input = page.getByLabel(label, { exact: true });
  await input.click();
  if (await input.isEditable()) await input.fill(option);
  await page.locator('.ant-select-dropdown:visible .ant-select-item-option').filter({ hasText: option }).first().click();
}

/** Types into an antd DatePicker / TimePicker found by its label and commits with Enter. */
export async function typeInPicker(page: Page, label: string, text: string): Promise<void> {
  const input = page.getByLabel(label, { exact: true });
  await input.click();
  await input.fill(text);
  await input.press('Enter');
}

/** The wall-clock fields of an instant in `zone`, for filling the modal. */
export function wallTime(epochMs: number, zone: string) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: 'numeric', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    })
      .formatToParts(new Date(epochMs))
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${hour % 12 === 0 ? 12 : hour % 12}:${String(minute).padStart(2, '0')} ${hour < 12 ? 'AM' : 'PM'}`,
    second: Number(parts.second),
  };
}
