/**
 * The Kubernetes forms in a real browser: an owner stores a kubeconfig (shown by server and
 * context, never the document), sees a refused kubeconfig's message on the field, and creates a
 * Kubernetes app (kind, namespace, workload, image) through the application form.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startTestServer } from '../helpers/server.ts';
import { chooseOption, ensureUiBuilt, launch, logIn, openTab, withScreenshot } from './harness.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const TOKEN = 'kube-browser-token-5f0c2a9e7d3b';
const kubeconfig = (user: string) => `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://k8s.example.com:6443
users:
- name: deployer
  user:
    ${user}
contexts:
- name: deployer@prod
  context: {cluster: prod, user: deployer}
current-context: deployer@prod
`;

describe('Kubernetes forms', () => {
  let server: Server;
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

  test('stores a kubeconfig and creates a Kubernetes app through the forms', async () => {
    // The refused kubeconfig's 422 is expected; any other console error fails the test.
    const { page, errors, context } = await openTab(browser, { ignoreConsole: /status of 422/ });
    await withScreenshot(page, 'kubernetes-forms', async () => {
      await logIn(page, server.url, server.adminEmail, server.adminPassword);
      await page.getByRole('menuitem', { name: 'Credentials' }).click();
      await page.getByRole('button', { name: 'Add credentials' }).click();
      const cdlg = page.getByRole('dialog', { name: 'Add credentials' });
      // The modal's OK button by its place: after a refused attempt its accessible name briefly
      // carries the loading icon's label, and a lookup by name then found nothing (flaky).
      const addButton = cdlg.locator('.ant-modal-footer .ant-btn-primary');
      await page.getByLabel('Name', { exact: true }).fill('prod-cluster');
      await chooseOption(page, 'Provider', 'Kubernetes');
      // A refused kubeconfig: the message shows on the field.
      await page.getByLabel('kubeconfig', { exact: true }).fill(kubeconfig('exec: {command: /bin/sh}'));
      await addButton.click();
      await cdlg.getByText(/credential plugin shipclock does not run/).waitFor();
      await page.getByLabel('kubeconfig', { exact: true }).fill(kubeconfig(`token: ${TOKEN}`));
      // The refused attempt's message is gone before the second one (its state has settled).
      await cdlg.getByText(/credential plugin shipclock does not run/).waitFor({ state: 'hidden' });
      const stored = page.waitForResponse((r) => r.url().endsWith('/v1/credentials') && r.request().method() === 'POST', { timeout: 30_000 });
      await addButton.click();
      assert.equal((await stored).status(), 201);
      await cdlg.waitFor({ state: 'hidden', timeout: 30_000 });
      const row = page.locator('tbody tr.ant-table-row').filter({ hasText: 'prod-cluster' });
      await row.waitFor();
      assert.match(await row.innerText(), /https:\/\/k8s\.example\.com:6443 \(deployer@prod\)/);
      assert.ok(!(await page.content()).includes(TOKEN), 'the token is not shown');

      await page.getByRole('menuitem', { name: 'Applications' }).click();
      await page.getByRole('button', { name: 'New application' }).click();
      const adlg = page.getByRole('dialog', { name: 'New application' });
      await page.getByLabel('Name', { exact: true }).fill('k8s-api');
      await chooseOption(page, 'Target type', 'Kubernetes workload');
      await page.getByLabel('Namespace', { exact: true }).fill('shop');
      await chooseOption(page, 'Kind', 'StatefulSet');
      await page.getByLabel('Workload name', { exact: true }).fill('api');
      await page.getByLabel('Image', { exact: true }).fill('registry.example.com/api:2.0.0');
      await chooseOption(page, 'Credentials', 'prod-cluster');
      await adlg.getByRole('button', { name: 'Create', exact: true }).click();
      await adlg.waitFor({ state: 'hidden' });
      const appRow = page.locator('tbody tr.ant-table-row').filter({ hasText: 'k8s-api' });
      await appRow.waitFor();
      assert.match(await appRow.innerText(), /StatefulSet shop\/api → registry\.example\.com\/api:2\.0\.0/);
      const apps = (await server.api('GET', '/v1/apps', undefined, server.adminToken)).body.result as { name: string; target: Record<string, unknown> }[];
      const t = apps.find((a) => a.name === 'k8s-api')!.target;
      assert.deepEqual({ ...t, credentials: typeof t.credentials }, {
        type: 'kubernetes', namespace: 'shop', kind: 'StatefulSet', name: 'api', image: 'registry.example.com/api:2.0.0', credentials: 'string', poll_interval_seconds: 15, timeout_seconds: 1800,
      });
    });
    assert.deepEqual(errors, [], 'no console errors');
    await context.close();
  });
});
