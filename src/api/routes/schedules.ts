/**
 * /v1/schedules: recurring schedules (issue 10). Occurrences are ordinary scheduled deployments
 * carrying `schedule_id` (GET /v1/scheduled_deployments?schedule=ID lists them).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  createSchedule, dbClock, deleteSchedule, getScheduleOut, listSchedulesOut, MAX_PREVIEW, preview, setPaused, updateSchedule,
} from '../../services/schedules.ts';
import type { MaterializeLimits } from '../../scheduler/occurrences.ts';
import { requireRole } from '../auth.ts';
import type { ApiContext } from '../context.ts';
import { ErrorBody, IdParams, ListQuery, Page, Uuid } from '../schemas.ts';

const DstGap = Type.Union([Type.Literal('shift'), Type.Literal('skip')], {
  description: 'a local time skipped by a DST change: "shift" (default) moves it forward by the gap (02:30 → 03:30), "skip" drops it',
});
const DstOverlap = Type.Union([Type.Literal('first'), Type.Literal('both')], {
  description: 'a local time that occurs twice when DST ends: "first" (default) runs once, at the earlier instant; "both" runs at both',
});
const Cron = Type.String({ minLength: 1, maxLength: 200, description: '5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "30 9 * * 1-5"' });
const Zone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone the expression is read in, e.g. Europe/Berlin' });
const Instant = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const fields = {
  cron: Cron,
  timezone: Zone,
  dependency: Type.Optional(Type.Union([Type.String({ format: 'uuid', description: 'id of an app deployed dependency_lead_seconds before each occurrence, which must succeed first' }), Type.Null()])),
  dependency_lead_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86400, description: 'the dependency runs this long before (default 900)' })),
  expires_after_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86400, description: 'an occurrence not started within this long after its instant → missed (default 3600)' })),
  starts_at: Type.Optional(Nullable(Type.String({ format: 'date-time', description: 'no run before this instant' }))),
  ends_at: Type.Optional(Nullable(Type.String({ format: 'date-time', description: 'no run after this instant' }))),
  dst_gap: Type.Optional(DstGap),
  dst_overlap: Type.Optional(DstOverlap),
};

export const ScheduleCreateBody = Type.Object(
  { app: Type.String({ format: 'uuid', description: 'id of the app to deploy' }), ...fields, paused: Type.Optional(Type.Boolean({ default: false })) },
  { additionalProperties: false },
);

export const ScheduleUpdateBody = Type.Object(
  { app: Type.Optional(Type.String({ format: 'uuid' })), ...fields, cron: Type.Optional(Cron), timezone: Type.Optional(Zone) },
  { additionalProperties: false, minProperties: 1 },
);

const AppRef = Type.Object({ id: Uuid, name: Type.String() });

export const Schedule = Type.Object(
  {
    id: Uuid,
    app: AppRef,
    cron: Type.String(),
    timezone: Type.String(),
    dst_gap: DstGap,
    dst_overlap: DstOverlap,
    dependency: Type.Union([AppRef, Type.Null()]),
    dependency_lead_seconds: Type.Union([Type.Integer(), Type.Null()]),
    expires_after_seconds: Type.Integer(),
    starts_at: Nullable(Instant),
    ends_at: Nullable(Instant),
    paused: Type.Boolean(),
    next_runs: Type.Array(Instant, { description: 'the next 5 instants (RFC 3339 UTC); empty while paused or once ended' }),
    created_at: Instant,
    updated_at: Instant,
  },
  { $id: 'Schedule' },
);

export const PreviewQuery = Type.Object(
  {
    cron: Cron,
    timezone: Zone,
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PREVIEW, default: 5 })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'instants strictly after this (default now)' })),
    dst_gap: Type.Optional(DstGap),
    dst_overlap: Type.Optional(DstOverlap),
  },
  { additionalProperties: false },
);

const LocalTimeOut = Type.Object({ year: Type.Integer(), month: Type.Integer(), day: Type.Integer(), hour: Type.Integer(), minute: Type.Integer(), second: Type.Integer() });

export const PreviewOut = Type.Object({
  result: Type.Array(Type.Object({
    run_at: Instant,
    local: LocalTimeOut,
    utc_offset: Type.String(),
    note: Type.Optional(Type.Union([Type.Literal('shifted (DST gap)'), Type.Literal('repeated hour')])),
  })),
});

const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const limits: MaterializeLimits = {
    horizonMs: ctx.config.scheduleHorizonSeconds * 1000, maxAhead: ctx.config.scheduleMaxAhead, maxMissed: ctx.config.scheduleMaxMissed,
  };

  app.post('/v1/schedules', {
    schema: {
      tags: ['schedules'],
      summary: 'Create a recurring schedule: a cron expression in an IANA zone (deployers)',
      description: 'Each occurrence becomes an ordinary scheduled deployment with `schedule_id`. An invalid cron, an unknown zone, ends_at not after starts_at, or a schedule that would never fire answers 422 naming the field; nothing is stored.',
      body: ScheduleCreateBody,
      response: { 201: Schedule, ...errors },
    },
  }, async (req, reply) => reply.status(201).send(await createSchedule(ctx.pool, requireRole(req, 'deployer'), req.body, limits)));

  app.get('/v1/schedules', {
    schema: { tags: ['schedules'], summary: 'List the team\'s schedules, oldest first', querystring: Type.Object(ListQuery, { additionalProperties: false }), response: { 200: Page(Schedule), 400: ErrorBody } },
  }, async (req) => listSchedulesOut(ctx.pool, req.user, req.query.limit ?? 50, req.query.cursor));

  app.get('/v1/schedules/preview', {
    schema: {
      tags: ['schedules'],
      summary: 'The instants a cron expression would fire at in a zone; nothing is stored',
      description: '`note` says "shifted (DST gap)" or "repeated hour" when a daylight-saving change applies.',
      querystring: PreviewQuery,
      response: { 200: PreviewOut, 400: ErrorBody, 422: ErrorBody },
    },
  }, async (req) => preview(req.query, await dbClock(ctx.pool)));

  app.get('/v1/schedules/:id', {
    schema: { tags: ['schedules'], summary: 'One schedule with its next runs', params: IdParams, response: { 200: Schedule, 404: ErrorBody } },
  }, async (req) => getScheduleOut(ctx.pool, req.user, req.params.id));

  app.patch('/v1/schedules/:id', {
    schema: {
      tags: ['schedules'],
      summary: 'Change a schedule (deployers): its occurrences that have not started are canceled and replaced; those that ran stay',
      params: IdParams, body: ScheduleUpdateBody, response: { 200: Schedule, ...errors },
    },
  }, async (req) => updateSchedule(ctx.pool, requireRole(req, 'deployer'), req.params.id, req.body, limits));

  app.delete('/v1/schedules/:id', {
    schema: { tags: ['schedules'], summary: 'Delete a schedule (deployers); its occurrences that have not started are canceled', params: IdParams, response: { 204: Type.Null(), 404: ErrorBody } },
  }, async (req, reply) => {
    await deleteSchedule(ctx.pool, requireRole(req, 'deployer'), req.params.id);
    return reply.status(204).send(null);
  });

  app.post('/v1/schedules/:id/pause', {
    schema: { tags: ['schedules'], summary: 'Pause (deployers): its occurrences that have not started are canceled', params: IdParams, response: { 200: Schedule, ...errors } },
  }, async (req) => setPaused(ctx.pool, requireRole(req, 'deployer'), req.params.id, true, limits));

  app.post('/v1/schedules/:id/resume', {
    schema: { tags: ['schedules'], summary: 'Resume (deployers): from now on, without back-filling what the pause skipped', params: IdParams, response: { 200: Schedule, ...errors } },
  }, async (req) => setPaused(ctx.pool, requireRole(req, 'deployer'), req.params.id, false, limits));
}
