/**
 * Small helpers for the account tests: HTTP calls to any process (with extra headers, e.g. a
 * client address in X-Forwarded-For), and members created through the API.
 */
import assert from 'node:assert/strict';
import type { TestServer } from './server.ts';

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

export async function call(baseUrl: string, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(baseUrl + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), redirect: 'manual' });
  const text = await res.text();
  let body: unknown = text;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers, text };
}

/** Adds a member to `teamId` as the admin and signs it in; its id and a login token. */
export async function addMember(s: TestServer, teamId: string, email: string, password: string, role: 'owner' | 'deployer' | 'viewer'): Promise<{ id: string; token: string }> {
  const r = await s.api('POST', `/v1/teams/${teamId}/members`, { email, password, role }, s.adminToken);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id: r.body.id, token: await s.login(email, password) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
