import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createApp, deleteApp, getApp, listApps, updateApp } from '../../services/apps.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import { App, AppCreate, AppUpdate, IdParams, ListQuery, Page } from '../schemas.ts';

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/apps', {
    schema: { tags: ['apps'], summary: 'Register an app and its deploy target (owners)', body: AppCreate, response: { 201: App } },
  }, async (req, reply) => reply.status(201).send(await createApp(ctx.pool, ctx.box, requireRole(req, 'owner'), req.body)));

  app.get('/v1/apps', {
    schema: { tags: ['apps'], summary: 'List the team\'s apps', querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(App) } },
  }, async (req) => listApps(ctx.pool, req.user, req.query.limit ?? 50, req.query.cursor));

  app.get('/v1/apps/:id', {
    schema: { tags: ['apps'], summary: 'One app', params: IdParams, response: { 200: App } },
  }, async (req) => getApp(ctx.pool, req.user, req.params.id));

  app.patch('/v1/apps/:id', {
    schema: { tags: ['apps'], summary: 'Change an app (owners); a webhook secret left out is kept', params: IdParams, body: AppUpdate, response: { 200: App } },
  }, async (req) => updateApp(ctx.pool, ctx.box, requireRole(req, 'owner'), req.params.id, req.body));

  app.delete('/v1/apps/:id', {
    schema: { tags: ['apps'], summary: 'Delete an app with nothing scheduled or running (owners)', params: IdParams, response: { 204: Type.Null() } },
  }, async (req, reply) => {
    await deleteApp(ctx.pool, requireRole(req, 'owner'), req.params.id);
    return reply.status(204).send(null);
  });
}
