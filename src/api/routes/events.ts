import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

const HEARTBEAT_MS = 15_000;

/** Server-sent events: `event: deployment`, data `{id, app_id, state, at, error}` for the caller's team. */
export default async function (app: FastifyInstance, ctx: ApiContext) {
  // Open streams never go idle: end them before the server closes, or a graceful stop would
  // wait on them until its deadline. Clients reconnect (to another process) after `retry`.
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });
  app.get('/v1/events', {
    schema: {
      tags: ['events'],
      summary: 'Server-sent events of the team\'s deployment state changes',
      description: 'text/event-stream. Each event is `event: deployment` with JSON data {id, app_id, state, at, error} (error: its first 1,000 characters; GET the deployment for all of it). The token may also be given as ?access_token= (EventSource cannot set headers).',
      querystring: Type.Object({ access_token: Type.Optional(Type.String()) }),
    },
  }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n: connected\n\n');
    const unsubscribe = ctx.hub.subscribe(req.user.team_id, (e) => {
      res.write(`event: deployment\ndata: ${JSON.stringify(e)}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    const close = () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(end);
    };
    const end = () => {
      close();
      res.end();
    };
    open.add(end);
    req.raw.on('close', close);
    res.on('error', close);
  });
}
