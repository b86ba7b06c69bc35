import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createCredential, deleteCredential, getCredential, listCredentials } from '../../services/credentials.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import { Credential, CredentialCreate, IdParams, ListQuery, Page } from '../schemas.ts';

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/credentials', {
    schema: { tags: ['credentials'], summary: 'Store a cloud credential, encrypted (owners); the secret is never returned', body: CredentialCreate, response: { 201: Credential } },
  }, async (req, reply) => reply.status(201).send(await createCredential(ctx.pool, ctx.box, requireRole(req, 'owner'), req.body)));

  app.get('/v1/credentials', {
    schema: { tags: ['credentials'], summary: 'List credentials (owners)', querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(Credential) } },
  }, async (req) => listCredentials(ctx.pool, requireRole(req, 'owner'), req.query.limit ?? 50, req.query.cursor));

  app.get('/v1/credentials/:id', {
    schema: { tags: ['credentials'], summary: 'One credential (owners)', params: IdParams, response: { 200: Credential } },
  }, async (req) => getCredential(ctx.pool, requireRole(req, 'owner'), req.params.id));

  app.delete('/v1/credentials/:id', {
    schema: { tags: ['credentials'], summary: 'Delete a credential no app uses (owners); 409 while one does', params: IdParams, response: { 204: Type.Null() } },
  }, async (req, reply) => {
    await deleteCredential(ctx.pool, requireRole(req, 'owner'), req.params.id);
    return reply.status(204).send(null);
  });
}
