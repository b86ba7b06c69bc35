/**
 * What is coming, by month or by week, in a zone the viewer chooses (their browser's by
 * default). Each visible range is one GET /v1/calendar in that zone: deployments, schedule
 * occurrences (also those planned beyond the materialized 24 h) and deploy freezes, which show
 * as shaded bands across the days they cover, under the deployments. Live events refresh it.
 * "Subscribe" makes the private feed URL (GET /v1/calendar.ics) for a calendar application.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { Alert, App as AntApp, Badge, Button, Calendar, Card, Flex, Grid, Input, Modal, Segmented, Select, Space, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { listZones } from '../../../core/time.ts';
import { type CalendarEntry, calendarApi } from '../calendar-api.ts';
import { useDeploymentEvents } from '../events.ts';
import { viewerZone } from '../format.ts';
import { linkClick } from '../router.ts';
import { StateTag } from '../components/StateTag.tsx';

type View = 'Month' | 'Week';

let zoneOptionsCache: { value: string; label: string }[] | null = null;
function zoneOptions(): { value: string; label: string }[] {
  zoneOptionsCache ??= listZones().map((z) => ({ value: z, label: z }));
  return zoneOptionsCache;
}

/** The grid's first day and the day after its last (calendar dates, no zone). */
function rangeOf(view: View, anchor: Dayjs): [Dayjs, Dayjs] {
  if (view === 'Week') {
    const start = anchor.startOf('day').subtract(anchor.day(), 'day');
    return [start, start.add(7, 'day')];
  }
  // The month grid shows parts of the neighbouring months too.
  const start = anchor.startOf('month').subtract(7, 'day');
  return [start, anchor.endOf('month').add(15, 'day').startOf('day')];
}

/** Midnight UTC of a calendar date, `padDays` later: the query is padded by a day on each side, which covers every zone's offset. */
function utcMidnight(d: Dayjs, padDays: number): string {
  return new Date(Date.UTC(d.year(), d.month(), d.date() + padDays)).toISOString();
}

/** "9:30 AM" from an RFC 3339 time written in the chosen zone. */
function wallClock(rfc3339: string): string {
  const h = Number(rfc3339.slice(11, 13));
  return `${h % 12 === 0 ? 12 : h % 12}:${rfc3339.slice(14, 16)} ${h < 12 ? 'AM' : 'PM'}`;
}

/** Today's date in a zone, "YYYY-MM-DD". */
function todayIn(zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

/** The freezes covering some of a day (wall times in the chosen zone compare as strings). */
function freezesOn(freezes: CalendarEntry[], day: string): CalendarEntry[] {
  const next = dayjs(day).add(1, 'day').format('YYYY-MM-DD');
  return freezes.filter((f) => f.start.slice(0, 19) < `${next}T00:00:00` && (f.end ?? '').slice(0, 19) > `${day}T00:00:00`);
}

function FreezeBand({ f, day }: { f: CalendarEntry; day: string }) {
  const starts = f.start.slice(0, 10) === day && f.start.slice(11, 19) !== '00:00:00';
  const ends = (f.end ?? '').slice(0, 10) === day;
  const part = starts ? ` from ${wallClock(f.start)}` : ends ? ` until ${wallClock(f.end!)}` : '';
  const apps = f.apps ? f.apps.map((a) => a.name).join(', ') : 'every app';
  return (
    <a
      href={f.link}
      onClick={linkClick(f.link)}
      data-testid="freeze-band"
      aria-label={`Freeze ${f.title.replace(/^Freeze: /, '')}${part}`}
      title={`${f.title} (${apps})${f.reason ? `: ${f.reason}` : ''}, ${f.start.slice(0, 16).replace('T', ' ')} – ${(f.end ?? '').slice(0, 16).replace('T', ' ')}`}
      style={{
        display: 'block', margin: '0 -4px 2px', padding: '0 4px', fontSize: 12, lineHeight: '18px', whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis',
        color: '#ad4e00', background: 'repeating-linear-gradient(135deg, rgba(250,140,22,0.30) 0 6px, rgba(250,140,22,0.15) 6px 12px)',
      }}
    >
      {f.title.replace(/^Freeze: /, '❄ ')}{part}
    </a>
  );
}

function Item({ e }: { e: CalendarEntry }) {
  if (e.state === 'planned') {
    return (
      <a href={e.link} onClick={linkClick(e.link)} title="a planned occurrence of a recurring schedule (it becomes a deployment within 24 h of its time)"
        style={{ display: 'block', whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis', fontStyle: 'italic', color: 'rgba(0,0,0,0.55)' }}>
        {wallClock(e.start)} {e.app?.name} <Typography.Text type="secondary">(planned)</Typography.Text>
      </a>
    );
  }
  return (
    <a href={e.link} onClick={linkClick(e.link)} title={e.title} style={{ display: 'block', whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis' }}>
      {wallClock(e.start)} {e.app?.name} <StateTag state={e.state} />
    </a>
  );
}

/** "Subscribe": makes the feed URL (shown once) or revokes it. */
function SubscribeModal({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { message } = AntApp.useApp();
  const [state, setState] = useState<{ active: boolean; created_at: string | null } | null>(null);
  const [url, setUrl] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!open) return;
    setUrl(null);
    setError(null);
    calendarApi.feedToken().then(setState).catch((e: Error) => setError(e.message));
  }, [open]);
  const create = async () => {
    setBusy(true);
    try {
      const r = await calendarApi.createFeedToken();
      setUrl(r.url);
      setState({ active: true, created_at: r.created_at });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async () => {
    setBusy(true);
    try {
      await calendarApi.revokeFeedToken();
      setUrl(null);
      setState({ active: false, created_at: null });
      message.success('Feed URL revoked');
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title="Subscribe to this calendar" open={open} onCancel={onClose} footer={<Button onClick={onClose}>Close</Button>} destroyOnHidden>
      <Space orientation="vertical" style={{ width: '100%' }}>
        <Typography.Paragraph>
          A private URL that Google Calendar, Outlook or Apple Calendar can subscribe to: your team's deployments, schedule occurrences and
          freezes, 30 days back to 180 days ahead. Anyone with the URL can read them; it is shown once.
        </Typography.Paragraph>
        {error && <Alert type="error" showIcon title={error} />}
        {url ? (
          <>
            <Alert type="warning" showIcon title="Copy it now: it will not be shown again." />
            <Input aria-label="Feed URL" readOnly value={url} onFocus={(e) => e.target.select()} />
            <Typography.Text copyable={{ text: url }}>Copy the URL</Typography.Text>
          </>
        ) : (
          state?.active && <Typography.Text type="secondary">You have a feed URL since {dayjs(state.created_at).format('YYYY-MM-DD HH:mm')}. A new one stops it.</Typography.Text>
        )}
        <Space>
          <Button type="primary" loading={busy} onClick={create}>{state?.active ? 'Make a new feed URL' : 'Make the feed URL'}</Button>
          {state?.active && <Button danger disabled={busy} onClick={revoke}>Revoke the feed URL</Button>}
        </Space>
      </Space>
    </Modal>
  );
}

export default function CalendarPage() {
  const screens = Grid.useBreakpoint();
  // A month grid has no room for names on a phone: start with the week there.
  const [view, setView] = useState<View>(() => (window.innerWidth < 768 ? 'Week' : 'Month'));
  const [anchor, setAnchor] = useState<Dayjs>(() => dayjs());
  const [zone, setZone] = useState<string>(() => viewerZone());
  const [entries, setEntries] = useState<CalendarEntry[]>([]);
  const [truncated, setTruncated] = useState<{ truncated: boolean; plannedUntil: string | null }>({ truncated: false, plannedUntil: null });
  const [error, setError] = useState<string | null>(null);
  const [subscribe, setSubscribe] = useState(false);
  const [n, setN] = useState(0);
  const [from, to] = useMemo(() => rangeOf(view, anchor), [view, anchor]);

  useEffect(() => {
    let live = true;
    calendarApi.calendar({ from: utcMidnight(from, -1), to: utcMidnight(to, 1), timezone: zone })
      .then((r) => live && (setEntries(r.result), setTruncated({ truncated: r.truncated, plannedUntil: r.planned_until }), setError(null)))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [from, to, zone, n]);

  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useDeploymentEvents(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => setN((x) => x + 1), 500);
  });

  const freezes = useMemo(() => entries.filter((e) => e.kind === 'freeze'), [entries]);
  const byDay = useMemo(() => {
    const m = new Map<string, CalendarEntry[]>();
    for (const e of entries) {
      if (e.kind === 'freeze') continue;
      const k = e.start.slice(0, 10);
      m.set(k, [...(m.get(k) ?? []), e]);
    }
    return m;
  }, [entries]);

  const week = Array.from({ length: 7 }, (_, i) => from.add(i, 'day'));
  const today = todayIn(zone);

  const dayContent = (day: string, max: number) => {
    const items = byDay.get(day) ?? [];
    const bands = freezesOn(freezes, day);
    return (
      <div>
        {bands.map((f) => <FreezeBand key={f.uid} f={f} day={day} />)}
        {items.slice(0, max).map((e) => <Item key={e.uid} e={e} />)}
        {items.length > max && <Typography.Text type="secondary">+{items.length - max} more</Typography.Text>}
      </div>
    );
  };

  return (
    <section aria-labelledby="calendar-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="calendar-title" style={{ margin: 0 }}>
          Calendar
        </Typography.Title>
        <Space wrap>
          <Typography.Text type="secondary">Times in</Typography.Text>
          <Select aria-label="Time zone" showSearch={{ optionFilterProp: 'label' }} options={zoneOptions()} value={zone} onChange={setZone} virtual style={{ width: 220 }} />
          <Segmented<View> aria-label="Calendar view" options={['Month', 'Week']} value={view} onChange={setView} />
          <Button onClick={() => setSubscribe(true)}>Subscribe</Button>
        </Space>
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      {truncated.truncated && (
        <Alert
          type="warning"
          showIcon
          title={truncated.plannedUntil
            ? `Too many planned occurrences in this range: they are shown up to ${truncated.plannedUntil.slice(0, 16).replace('T', ' ')} only. Use the week view.`
            : 'Too many entries in this range: the latest are not shown. Use the week view.'}
          style={{ marginBottom: 16 }}
        />
      )}
      {view === 'Month' ? (
        <Calendar
          value={anchor}
          onChange={setAnchor}
          onPanelChange={(d) => setAnchor(d)}
          cellRender={(date, info) => {
            if (info.type !== 'date') return info.originNode;
            const day = date.format('YYYY-MM-DD');
            if (!screens.md) {
              const count = (byDay.get(day) ?? []).length;
              const frozen = freezesOn(freezes, day).length > 0;
              return (
                <>
                  {frozen && <div data-testid="freeze-band" aria-label="Freeze" style={{ height: 4, background: 'rgba(250,140,22,0.45)' }} />}
                  {count ? <Badge count={count} size="small" color="blue" /> : null}
                </>
              );
            }
            return dayContent(day, 4);
          }}
        />
      ) : (
        <>
          <Space wrap style={{ marginBottom: 12 }}>
            <Button onClick={() => setAnchor((a) => a.subtract(7, 'day'))}>Previous week</Button>
            <Button onClick={() => setAnchor(dayjs())}>This week</Button>
            <Button onClick={() => setAnchor((a) => a.add(7, 'day'))}>Next week</Button>
            <Typography.Text strong>
              {from.format('MMM D')} – {from.add(6, 'day').format('MMM D, YYYY')}
            </Typography.Text>
          </Space>
          <Flex wrap gap={8}>
            {week.map((d) => {
              const day = d.format('YYYY-MM-DD');
              const empty = !(byDay.get(day) ?? []).length && !freezesOn(freezes, day).length;
              return (
                <div key={day} style={{ flex: '1 1 140px', minWidth: 0 }}>
                  <Card size="small" title={d.format('ddd, MMM D')} style={day === today ? { borderColor: '#1677ff' } : undefined}>
                    {empty ? <Typography.Text type="secondary">—</Typography.Text> : dayContent(day, 1000)}
                  </Card>
                </div>
              );
            })}
          </Flex>
        </>
      )}
      <SubscribeModal open={subscribe} onClose={() => setSubscribe(false)} />
    </section>
  );
}
