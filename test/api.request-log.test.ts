/**
 * A request's logger is built only when the request writes a line: what is logged stays as it
 * was (the request id, the `http` component, the redaction of secrets), and lines below the
 * level cost nothing.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { buildApi, type Api } from '../src/api/app.ts';
import type { ApiContext } from '../src/api/context.ts';
import { createLogger } from '../src/observability/logger.ts';

describe('request logs', () => {
  let app: Api;
  const lines: Array<Record<string, unknown>> = [];
  before(async () => {
    const sink = new Writable({
      write(chunk, _e, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    // A worker's API needs only the logger for these routes: no database.
    app = await buildApi({ role: 'worker', logger: createLogger('info', sink) } as unknown as ApiContext);
    app.get('/boom', async () => {
      throw Object.assign(new Error('boom'), { authorization: 'Bearer never-log-this' });
    });
    app.get('/chatty', async (request) => {
      request.log.debug('below the level');
      request.log.info({ token: 'never-log-this-either' }, 'from the handler');
      request.log.child({ step: 'child' }).warn('from a child');
      return { ok: true };
    });
    await app.ready();
  });
  after(() => app.close());

  it('an internal error is logged with the request id, the component and secrets redacted', async () => {
    lines.length = 0;
    const res = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(res.statusCode, 500);
    const line = lines.find((l) => l.msg === 'internal error');
    assert.ok(line, JSON.stringify(lines));
    assert.equal(line.level, 50);
    assert.equal(line.component, 'http');
    assert.equal(line.service, 'shipclock');
    assert.match(String(line.reqId), /^req-/);
    assert.equal((line.err as Record<string, unknown>).message, 'boom');
    assert.equal((line.err as Record<string, unknown>).authorization, '[redacted]');
  });

  it("a handler's lines carry the request id, also from its children; lines below the level are not written", async () => {
    lines.length = 0;
    assert.equal((await app.inject({ method: 'GET', url: '/chatty' })).statusCode, 200);
    assert.deepEqual(lines.map((l) => l.msg), ['from the handler', 'from a child']);
    const [info, child] = lines;
    assert.match(String(info.reqId), /^req-/);
    assert.equal(info.component, 'http');
    assert.equal(info.token, '[redacted]');
    assert.equal(child.reqId, info.reqId);
    assert.equal(child.step, 'child');
  });

  it('a request that logs nothing writes nothing (request logging stays off)', async () => {
    lines.length = 0;
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    assert.deepEqual(lines, []);
  });
});
