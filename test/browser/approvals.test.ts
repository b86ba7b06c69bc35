/**
 * Approvals in a real browser: the policy set in the app form; a second user approves from the
 * deployment page, and the row (and the pending-approvals badge) change live in the first user's
 * list, over the event stream, without a reload.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { addMember } from '../helpers/accounts.ts';
import { eventually, startTestServer, utcFields } from '../helpers/server.ts';
import { ensureUiBuilt, launch, logIn, openTab, withScreenshot } from './harness.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;

let server: Server;
let browser: Browser;

describe('approvals in the UI', () => {
  before(async () => {
    ensureUiBuilt();
    server = await startTestServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the app form sets the approval policy', async () => {
    const app = await server.api('POST', '/v1/apps', { name: 'gated-api', target: { type: 'webhook', url: 'https://hooks.example.com/deploy' } }, server.adminToken);
    assert.equal(app.status, 201);
    const tab = await openTab(browser);
    const { page } = tab;
    try {
      await withScreenshot(page, 'approvals-app-form', async () => {
        await logIn(page, server.url, server.adminEmail, server.adminPassword);
        await page.getByRole('menuitem', { name: 'Applications' }).click();
        await page.getByRole('button', { name: 'Edit gated-api' }).click();
        const dialog = page.getByRole('dialog', { name: 'Edit gated-api' });
        await dialog.waitFor();
        await dialog.getByLabel('Approvals required').fill('1');
        await dialog.getByRole('button', { name: 'Save' }).click();
        await dialog.waitFor({ state: 'hidden' });
        const saved = await server.api('GET', `/v1/apps/${app.body.id}`, undefined, server.adminToken);
        assert.deepEqual(saved.body.approval, { required: 1, from_roles: ['owner', 'deployer'] });
        await page.locator('tbody tr.ant-table-row').filter({ hasText: 'gated-api' }).getByText('1 from owners or deployers').waitFor();
      });
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.context.close();
    }
  });

  test('a second user approves from the deployment page; the first user\'s row and badge change live', async () => {
    const team = (await server.api('GET', '/v1/me', undefined, server.adminToken)).body.team.id;
    await addMember(server, team, 'second@example.com', 'second-password-1', 'deployer');
    const apps = (await server.api('GET', '/v1/apps', undefined, server.adminToken)).body.result;
    const appId = apps.find((a: { name: string }) => a.name === 'gated-api').id;
    const d = await server.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(2 * 3600_000) }, server.adminToken);
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const id = d.body.result.id as string;

    const first = await openTab(browser);
    const second = await openTab(browser);
    try {
      await withScreenshot(first.page, 'approvals-live-first', async () => {
        await logIn(first.page, server.url, server.adminEmail, server.adminPassword);
        const row = first.page.locator('tbody tr.ant-table-row').filter({ hasText: 'gated-api' });
        await row.locator('[data-approval="pending"]').waitFor();
        assert.match(await row.innerText(), /pending 0\/1/);
        await first.page.getByRole('button', { name: 'Pending approvals: 1' }).waitFor();

        await withScreenshot(second.page, 'approvals-live-second', async () => {
          await logIn(second.page, server.url, 'second@example.com', 'second-password-1');
          await second.page.goto(`${server.url}/deployments/${id}`);
          const card = second.page.locator('.ant-card').filter({ hasText: 'Approval' }).first();
          await card.getByText('Needs 1 more approval').waitFor();
          await second.page.getByLabel('Approval comment').fill('checked the release notes');
          await card.getByRole('button', { name: 'Approve' }).click();
          await card.locator('[data-approval="approved"]').waitFor();
          await card.getByText(/approved by second@example.com .*: checked the release notes/).waitFor();
        });

        // No reload in the first tab: the event stream brings it.
        await row.locator('[data-approval="approved"]').waitFor();
        assert.match(await row.innerText(), /approved 1\/1/);
        await first.page.getByRole('button', { name: 'Pending approvals: 0' }).waitFor();
        const one = await server.api('GET', `/v1/scheduled_deployments/${id}`, undefined, server.adminToken);
        assert.equal(one.body.result.approval.status, 'approved');
        assert.equal(one.body.result.approval.approvals[0].user.email, 'second@example.com');

        // The filter: nothing is pending any more.
        await first.page.getByRole('button', { name: 'Pending approvals: 0' }).click();
        await eventually(async () => (await first.page.getByText('No deployments').count()) > 0, 15_000, 'the pending filter to show nothing');
      });
      assert.deepEqual(first.errors, []);
      assert.deepEqual(second.errors, []);
    } finally {
      await first.context.close();
      await second.context.close();
    }
  });
});
