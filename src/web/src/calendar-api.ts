/** The calendar and its feed token (GET /v1/calendar, /v1/me/calendar-token): issue 11. */
import { request } from './api.ts';

export interface CalendarEntry {
  kind: 'deployment' | 'occurrence' | 'freeze';
  id: string;
  uid: string;
  title: string;
  /** A deployment's state; "planned"; a freeze's "upcoming" | "active" | "ended". */
  state: string;
  /** RFC 3339 in the requested zone: its first 16 characters are the wall time there. */
  start: string;
  start_utc: string;
  end: string | null;
  end_utc: string | null;
  app: { id: string; name: string } | null;
  schedule_id: string | null;
  link: string;
  apps?: { id: string; name: string }[] | null;
  reason?: string | null;
}

export interface CalendarPage {
  from: string;
  to: string;
  timezone: string;
  result: CalendarEntry[];
  truncated: boolean;
  /** Planned occurrences are listed up to this time only; null: all of them. */
  planned_until: string | null;
}

export const calendarApi = {
  calendar: (q: { from: string; to: string; timezone: string }) =>
    request<CalendarPage>('GET', `/v1/calendar?${new URLSearchParams(q).toString()}`),
  feedToken: () => request<{ active: boolean; created_at: string | null }>('GET', '/v1/me/calendar-token'),
  createFeedToken: () => request<{ token: string; url: string; created_at: string }>('POST', '/v1/me/calendar-token'),
  revokeFeedToken: () => request<null>('DELETE', '/v1/me/calendar-token'),
};
