/**
 * /v1/freezes: deploy freezes (issue 11). Owners create, change and delete them; everyone in the
 * team reads them. A freeze created over scheduled deployments holds them (`conflicts`).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { checkInstant, createFreeze, deleteFreeze, getFreezeOut, listFreezesOut, updateFreeze } from '../../services/freezes.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import { ErrorBody, IdParams, ListQuery, Page, ScheduledDeployment, Uuid } from '../schemas.ts';

const Wall = Type.Object(
  {
    year: Type.Integer({ description: '1970–9999' }),
    month: Type.Integer({ description: '1–12' }),
    day: Type.Integer({ description: '1–31' }),
    hour: Type.Integer({ description: '0–23, wall-clock time in `timezone`' }),
    minute: Type.Integer({ description: '0–59' }),
  },
  { additionalProperties: false },
);
const Zone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone, e.g. Europe/Berlin' });
const Cron = Type.String({ minLength: 1, maxLength: 200, description: 'recurring: when each window starts, 5 fields (or 6, seconds first), read in `timezone`; e.g. "0 16 * * 5"' });
const Duration = Type.Integer({ minimum: 60, maximum: 366 * 86400, description: 'recurring: how long each window lasts, in wall-clock seconds in `timezone` (Friday 16:00 + 64 h ends Monday 08:00 local, DST or not)' });
const Apps = Type.Union([Type.Array(Uuid, { minItems: 1, maxItems: 500 }), Type.Null()], { description: 'the apps it covers; left out or null: every app of the team' });
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Reason = Type.Union([Type.String({ maxLength: 1000 }), Type.Null()]);
const Instant = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const FreezeCreateBody = Type.Object(
  {
    name: Name,
    timezone: Zone,
    start: Type.Optional(Wall),
    end: Type.Optional(Wall),
    cron: Type.Optional(Cron),
    duration_seconds: Type.Optional(Duration),
    apps: Type.Optional(Apps),
    reason: Type.Optional(Reason),
  },
  { additionalProperties: false, description: 'one-off: start and end (wall times in timezone); recurring: cron and duration_seconds' },
);

export const FreezeUpdateBody = Type.Object(
  { ...FreezeCreateBody.properties, name: Type.Optional(Name), timezone: Type.Optional(Zone) },
  { additionalProperties: false, minProperties: 1 },
);

const WallOut = Type.Union([Type.Object({ year: Type.Integer(), month: Type.Integer(), day: Type.Integer(), hour: Type.Integer(), minute: Type.Integer() }), Type.Null()]);

const freezeFields = {
  id: Uuid,
  name: Type.String(),
  reason: Reason,
  kind: Type.Union([Type.Literal('once'), Type.Literal('recurring')]),
  timezone: Type.String(),
  start: WallOut,
  end: WallOut,
  start_at: Nullable(Instant),
  end_at: Nullable(Instant),
  cron: Nullable(Type.String()),
  duration_seconds: Type.Union([Type.Integer(), Type.Null()]),
  apps: Type.Union([Type.Array(Uuid), Type.Null()]),
  next_windows: Type.Array(Type.Object({ start: Instant, end: Instant }), { description: 'the current or next 3 windows (RFC 3339 UTC)' }),
  created_by: Nullable(Type.String()),
  created_at: Instant,
  updated_at: Instant,
};
export const Freeze = Type.Object(freezeFields, { $id: 'Freeze' });
const FreezeWithConflicts = Type.Object({
  ...freezeFields,
  conflicts: Type.Array(ScheduledDeployment, { description: 'the scheduled deployments this freeze now holds (state held)' }),
  released: Type.Optional(Type.Array(Uuid, { description: 'PATCH: the held deployments it no longer covers, scheduled again' })),
});

export const FreezeCheckQuery = Type.Object(
  {
    app: Uuid,
    run_at: Type.String({ format: 'date-time', description: 'the instant to check' }),
    dependency: Type.Optional(Uuid),
    dependency_lead_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86400, description: 'default 900' })),
    timezone: Type.Optional(Zone),
  },
  { additionalProperties: false },
);
const FreezeCheck = Type.Object({
  frozen: Type.Boolean(),
  freeze: Type.Optional(Type.Object({ id: Uuid, name: Type.String(), reason: Reason, end: Instant })),
  app: Type.Optional(Type.Union([Type.Literal('app'), Type.Literal('dependency')], { description: 'which deployment is frozen' })),
  message: Type.Optional(Type.String({ description: 'what the 409 would say, in `timezone` (default UTC)' })),
  next_allowed_at: Type.Union([Instant, Type.Null()], { description: 'run_at itself when not frozen; null: nothing free within 366 days' }),
});

const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.post('/v1/freezes', {
    schema: {
      tags: ['freezes'],
      summary: 'Create a deploy freeze, one-off or recurring (owners); scheduled deployments it covers become held',
      description: 'Scheduling into a freeze answers 409 frozen with next_allowed_at; a deployment already scheduled inside it is held (listed in `conflicts`) until released, rescheduled, canceled or the freeze goes.',
      body: FreezeCreateBody,
      response: { 201: FreezeWithConflicts, ...errors },
    },
  }, async (req, reply) => reply.status(201).send(await createFreeze(ctx.pool, requireRole(req, 'owner'), req.body)));

  app.get('/v1/freezes', {
    schema: { tags: ['freezes'], summary: 'List the team\'s freezes, oldest first', querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(Freeze), 400: ErrorBody } },
  }, async (req) => listFreezesOut(ctx.pool, req.user, req.query.limit ?? 50, req.query.cursor));

  app.get('/v1/freezes/check', {
    schema: {
      tags: ['freezes'],
      summary: 'Would a deployment at this instant (and its dependency) be refused as frozen? Nothing is stored',
      querystring: FreezeCheckQuery,
      response: { 200: FreezeCheck, 400: ErrorBody, 422: ErrorBody },
    },
  }, async (req) => checkInstant(ctx.pool, req.user, req.query));

  app.get('/v1/freezes/:id', {
    schema: { tags: ['freezes'], summary: 'One freeze', params: IdParams, response: { 200: Freeze, 404: ErrorBody } },
  }, async (req) => getFreezeOut(ctx.pool, req.user, req.params.id));

  app.patch('/v1/freezes/:id', {
    schema: {
      tags: ['freezes'],
      summary: 'Change a freeze (owners): deployments it no longer covers are scheduled again, those it now covers are held',
      params: IdParams, body: FreezeUpdateBody, response: { 200: FreezeWithConflicts, ...errors },
    },
  }, async (req) => updateFreeze(ctx.pool, requireRole(req, 'owner'), req.params.id, req.body));

  app.delete('/v1/freezes/:id', {
    schema: { tags: ['freezes'], summary: 'Delete a freeze (owners): the deployments it held whose instant is ahead are scheduled again', params: IdParams, response: { 204: Type.Null(), 403: ErrorBody, 404: ErrorBody } },
  }, async (req, reply) => {
    await deleteFreeze(ctx.pool, requireRole(req, 'owner'), req.params.id);
    return reply.status(204).send(null);
  });
}
