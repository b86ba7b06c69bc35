/**
 * /v1/notifications: a team's subscriptions to final deployment states (owners).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { NOTIFY_EVENTS } from '../../db/sql/notifications.ts';
import {
  createNotification, deleteNotification, listNotifications, REMIND_MAX_SECONDS, REMIND_MIN_SECONDS, updateNotification,
} from '../../services/notifications.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import { ErrorBody, IdParams, ListQuery, Page } from '../schemas.ts';

const NotifyEvent = Type.Union(NOTIFY_EVENTS.map((e) => Type.Literal(e)));
// No minimum/maximum here: the service answers 422 `invalid_remind_before` naming the field and the limits.
const RemindBefore = Type.Union([Type.Integer(), Type.Null()], {
  description: `remind this many seconds before each scheduled deployment of the team (${REMIND_MIN_SECONDS} to ${REMIND_MAX_SECONDS}, e.g. 900), with signed postpone/approve links; null: no reminders`,
});
const NotifyFormat = Type.Union([Type.Literal('json'), Type.Literal('slack')], {
  description: '"json": the event object; "slack": a Slack incoming-webhook body {text, blocks}',
});

export const NotificationCreate = Type.Object(
  {
    url: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048, description: 'where to POST' }),
    events: Type.Array(NotifyEvent, { minItems: 1, maxItems: NOTIFY_EVENTS.length, uniqueItems: true, description: 'final states (failed, missed, skipped, succeeded) and approval events (approval_requested, approved, rejected) to be told about' }),
    format: Type.Optional(NotifyFormat),
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'HMAC-SHA256 key for X-Shipclock-Signature; write-only' })),
    remind_before_seconds: Type.Optional(RemindBefore),
  },
  { additionalProperties: false },
);

export const NotificationUpdate = Type.Object(
  {
    url: Type.Optional(NotificationCreate.properties.url),
    events: Type.Optional(NotificationCreate.properties.events),
    format: Type.Optional(NotifyFormat),
    secret: Type.Optional(Type.Union([
      Type.String({ minLength: 1, maxLength: 1024 }),
      Type.Null(),
    ], { description: 'a new HMAC-SHA256 key (write-only), or null to stop signing' })),
    remind_before_seconds: Type.Optional(RemindBefore),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const Notification = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  events: Type.Array(NotifyEvent),
  format: NotifyFormat,
  has_secret: Type.Boolean({ description: 'whether deliveries are signed (the secret itself is never returned)' }),
  remind_before_seconds: Type.Union([Type.Integer(), Type.Null()], { description: 'the reminder lead in seconds; null: no reminders' }),
  created_at: Type.String({ format: 'date-time' }),
});

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/v1/notifications', {
    schema: {
      tags: ['notifications'],
      summary: 'Subscribe a URL to final states of the team\'s deployments (owners); delivered with retries, signed when a secret is set',
      body: NotificationCreate,
      response: { 201: Notification },
    },
  }, async (req, reply) => reply.status(201).send(await createNotification(ctx.pool, ctx.box, requireRole(req, 'owner'), req.body)));

  app.get('/v1/notifications', {
    schema: { tags: ['notifications'], summary: 'List notification subscriptions (owners)', querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(Notification) } },
  }, async (req) => listNotifications(ctx.pool, requireRole(req, 'owner'), req.query.limit ?? 50, req.query.cursor));

  app.patch('/v1/notifications/:id', {
    schema: {
      tags: ['notifications'],
      summary: 'Change a subscription\'s url, events, format, secret or reminder lead (owners); queued deliveries follow the change',
      params: IdParams, body: NotificationUpdate, response: { 200: Notification, 404: ErrorBody },
    },
  }, async (req) => updateNotification(ctx.pool, ctx.box, requireRole(req, 'owner'), req.params.id, req.body));

  app.delete('/v1/notifications/:id', {
    schema: { tags: ['notifications'], summary: 'Delete a subscription and its pending deliveries (owners)', params: IdParams, response: { 204: Type.Null() } },
  }, async (req, reply) => {
    await deleteNotification(ctx.pool, requireRole(req, 'owner'), req.params.id);
    return reply.status(204).send(null);
  });
}
