/**
 * The calendar (issue 11): GET /v1/calendar (JSON, any member of the team); the iCalendar feed
 * GET /v1/calendar.ics?token=… (no session: the feed token authenticates); the caller's feed
 * token at /v1/me/calendar-token.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../../core/errors.ts';
import {
  calendarFeed, createCalendarToken, FEED_FUTURE_DAYS, FEED_PAST_DAYS, myCalendarToken, revokeMyCalendarToken,
} from '../../services/calendar-feed.ts';
import { type CalendarDeps, type FreezeWindows, getCalendar, MAX_ENTRIES, MAX_PLANNED, MAX_RANGE_DAYS } from '../../services/calendar.ts';
import type { ApiContext } from '../context.ts';
import { ErrorBody, Uuid } from '../schemas.ts';

/**
 * Where the calendar gets freezes from: the ONE place to wire them. Until the freezes service
 * (issue 11, src/services/freezes.ts) is on main, there are none.
 */
const freezeWindows: FreezeWindows = async () => [];
const deps: CalendarDeps = { freezeWindows };

const Rfc3339 = Type.String({ format: 'date-time' });
const AppRef = Type.Object({ id: Uuid, name: Type.String() });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const CalendarEntry = Type.Object({
  kind: Type.Union([Type.Literal('deployment'), Type.Literal('occurrence'), Type.Literal('freeze')], {
    description: 'deployment: a one-off scheduled deployment (or its dependency); occurrence: one of a recurring schedule (a deployment row, or "planned" beyond the materialized horizon); freeze: a deploy freeze window',
  }),
  id: Type.String({ description: 'the deployment\'s id; a planned occurrence\'s schedule id; the freeze\'s id' }),
  uid: Type.String({ description: 'stable and unique in a calendar (the feed\'s UID); an occurrence keeps it when it turns from planned into a deployment' }),
  title: Type.String(),
  state: Type.String({ description: 'a deployment\'s state; "planned" for an occurrence that is not a deployment yet; a freeze is "upcoming", "active" or "ended"' }),
  start: Type.String({ description: 'RFC 3339 in the requested zone, with its offset at that instant' }),
  start_utc: Rfc3339,
  end: Nullable(Type.String({ description: 'freezes only (exclusive), in the requested zone' })),
  end_utc: Nullable(Rfc3339),
  app: Type.Union([AppRef, Type.Null()], { description: 'null for freezes' }),
  schedule_id: Type.Union([Uuid, Type.Null()]),
  link: Type.String({ description: 'the UI path that shows it' }),
  apps: Type.Optional(Type.Union([Type.Array(AppRef), Type.Null()], { description: 'freezes: the apps it covers; null: every app of the team' })),
  reason: Type.Optional(Type.Union([Type.String(), Type.Null()])),
}, { $id: 'CalendarEntry' });

export const CalendarQuery = Type.Object({
  from: Type.String({ format: 'date-time', description: 'RFC 3339 with an offset; entries whose instant (a freeze: whose window) is at or after it' }),
  to: Type.String({ format: 'date-time', description: `RFC 3339 with an offset, after from, at most ${MAX_RANGE_DAYS} days later; entries before it` }),
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA zone the times are written in, e.g. Europe/Berlin (default UTC)' })),
}, { additionalProperties: false });

export const CalendarOut = Type.Object({
  from: Type.String(),
  to: Type.String(),
  timezone: Type.String(),
  result: Type.Array(CalendarEntry),
  truncated: Type.Boolean({ description: `more than ${MAX_ENTRIES} entries matched (the earliest are listed; ask for a shorter range), or more than about ${MAX_PLANNED} planned occurrences (see planned_until)` }),
  planned_until: Type.Union([Type.String(), Type.Null()], { description: 'planned occurrences are listed up to this instant only (in the zone); null: all of them. Deployment rows and freezes are always all listed' }),
});

const CalendarToken = Type.Object({
  token: Type.String({ description: '"shcal_" + 40 characters; shown once, never again' }),
  url: Type.String({ description: 'the feed URL to subscribe to (it contains the token: keep it secret)' }),
  created_at: Rfc3339,
});

export default async function (fastify: FastifyInstance, ctx: ApiContext) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  /** Where people reach this server: SHIPCLOCK_PUBLIC_URL, else the address this request came to. */
  const baseUrl = (req: FastifyRequest) => ctx.config.publicUrl ?? `${req.protocol}://${req.host}`;

  app.get('/v1/calendar', {
    schema: {
      tags: ['calendar'],
      summary: 'The team\'s deployments, schedule occurrences (also those planned beyond the materialized horizon) and freezes in a range, in a zone',
      description: `Ordered by start. A from or to that is not RFC 3339 answers 400; to not after from, a range over ${MAX_RANGE_DAYS} days or an unknown zone answer 422 naming the field.`,
      querystring: CalendarQuery,
      response: { 200: CalendarOut, 400: ErrorBody, 422: ErrorBody },
    },
  }, async (req) => getCalendar(ctx.pool, deps, req.user.team_id, req.query));

  app.get('/v1/calendar.ics', {
    schema: {
      tags: ['calendar'],
      summary: `The calendar as an iCalendar (RFC 5545) feed to subscribe to, ${FEED_PAST_DAYS} days back to ${FEED_FUTURE_DAYS} days ahead; authenticated by its feed token, no session`,
      description: 'text/calendar: one VEVENT per calendar entry with its stable uid, DTSTART/DTEND in UTC, SUMMARY, URL and STATUS (CANCELLED for canceled, skipped and missed deployments; TENTATIVE for planned occurrences); freezes span their window with TRANSP:TRANSPARENT. An unknown or revoked token answers 401 in plain text.',
      security: [],
      querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 200, description: 'the feed token from POST /v1/me/calendar-token' })) }, { additionalProperties: true }),
      produces: ['text/calendar'],
      response: { 200: Type.String({ description: 'text/calendar' }), 401: Type.String({ description: 'text/plain' }) },
    },
  }, async (req, reply) => {
    reply.header('cache-control', 'private, no-store');
    try {
      const body = await calendarFeed(ctx.pool, deps, req.query.token, baseUrl(req));
      return reply.type('text/calendar; charset=utf-8').header('content-disposition', 'inline; filename="shipclock.ics"').send(body);
    } catch (err) {
      // Calendar applications show a plain answer, not a JSON error.
      if (err instanceof UnauthorizedError) return reply.status(401).type('text/plain; charset=utf-8').send(`${err.message}\n`);
      throw err;
    }
  });

  app.post('/v1/me/calendar-token', {
    schema: {
      tags: ['calendar'],
      summary: 'A new calendar feed token for you (shown once, in "token" and "url"; stored hashed); it revokes your previous one. Not with an API token',
      response: { 201: CalendarToken, 403: ErrorBody },
    },
  }, async (req, reply) => reply.status(201).send(await createCalendarToken(ctx.pool, req.user, req.authToken, baseUrl(req))));

  app.get('/v1/me/calendar-token', {
    schema: {
      tags: ['calendar'],
      summary: 'Whether you have a live calendar feed token, and since when (never the token)',
      response: { 200: Type.Object({ active: Type.Boolean(), created_at: Nullable(Rfc3339) }) },
    },
  }, async (req) => myCalendarToken(ctx.pool, req.user));

  app.delete('/v1/me/calendar-token', {
    schema: {
      tags: ['calendar'],
      summary: 'Revoke your calendar feed token: the feed answers 401 from the next request on',
      response: { 204: Type.Null(), 404: ErrorBody },
    },
  }, async (req, reply) => {
    await revokeMyCalendarToken(ctx.pool, req.user);
    return reply.status(204).send(null);
  });
}
