/**
 * What is coming, by month or by week, in the viewer's own time. Each visible range is one
 * `from`/`to` query; live events refresh it. Recurring schedules' future occurrences show too:
 * those already made deployment rows (the next 24 h) come with the query; later ones are computed
 * from GET /v1/schedules/preview for the visible range and shown as "planned".
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { Alert, Badge, Button, Calendar, Card, Flex, Grid, Segmented, Space, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { api, listAll, type Schedule, type ScheduledDeployment } from '../api.ts';
import { useDeploymentEvents } from '../events.ts';
import { viewerZone } from '../format.ts';
import { linkClick } from '../router.ts';
import { StateTag } from '../components/StateTag.tsx';

type View = 'Month' | 'Week';

/** A future occurrence of a schedule that is not a deployment row yet. */
interface Planned {
  key: string;
  scheduleId: string;
  app: string;
  run_at: string;
}

/** At most this many schedules are previewed for one range (each preview lists at most 100 runs). */
const MAX_PLANNED_SCHEDULES = 50;

/** The occurrences of the visible range that are not rows yet, from the preview endpoint. */
async function plannedOccurrences(from: Dayjs, to: Dayjs): Promise<Planned[]> {
  const start = Math.max(Date.now(), from.valueOf());
  if (start >= to.valueOf()) return [];
  const schedules = (await listAll<Schedule>((c) => api.listSchedules(c), 500)).filter((s) => !s.paused && s.next_runs.length).slice(0, MAX_PLANNED_SCHEDULES);
  const lists = await Promise.all(schedules.map(async (s) => {
    const from = Math.max(start, s.starts_at ? Date.parse(s.starts_at) - 1 : 0);
    const r = await api.previewSchedule({ cron: s.cron, timezone: s.timezone, dst_gap: s.dst_gap, dst_overlap: s.dst_overlap, count: 100, from: new Date(from).toISOString() }).catch(() => ({ result: [] }));
    return r.result
      .filter((x) => Date.parse(x.run_at) < to.valueOf() && (!s.ends_at || Date.parse(x.run_at) <= Date.parse(s.ends_at)))
      .map((x) => ({ key: `${s.id}@${x.run_at}`, scheduleId: s.id, app: s.app.name, run_at: x.run_at }));
  }));
  return lists.flat();
}

function PlannedItem({ p }: { p: Planned }) {
  return (
    <span title="a planned occurrence of a recurring schedule (it becomes a deployment within 24 h of its time)"
      style={{ display: 'block', whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis', fontStyle: 'italic', color: 'rgba(0,0,0,0.55)' }}>
      {dayjs(p.run_at).format('h:mm A')} {p.app} <Typography.Text type="secondary">(planned)</Typography.Text>
    </span>
  );
}

function rangeOf(view: View, anchor: Dayjs): [Dayjs, Dayjs] {
  if (view === 'Week') {
    const start = anchor.startOf('day').subtract(anchor.day(), 'day');
    return [start, start.add(7, 'day')];
  }
  // The month grid shows parts of the neighbouring months too.
  const start = anchor.startOf('month').subtract(7, 'day');
  return [start, anchor.endOf('month').add(15, 'day')];
}

function Item({ d }: { d: ScheduledDeployment }) {
  return (
    <a href={`/deployments/${d.id}`} onClick={linkClick(`/deployments/${d.id}`)} style={{ display: 'block', whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis' }}>
      {dayjs(d.run_at).format('h:mm A')} {d.app.name} <StateTag state={d.state} />
    </a>
  );
}

export default function CalendarPage() {
  const screens = Grid.useBreakpoint();
  // A month grid has no room for names on a phone: start with the week there.
  const [view, setView] = useState<View>(() => (window.innerWidth < 768 ? 'Week' : 'Month'));
  const [anchor, setAnchor] = useState<Dayjs>(() => dayjs());
  const [rows, setRows] = useState<ScheduledDeployment[]>([]);
  const [planned, setPlanned] = useState<Planned[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  const [from, to] = useMemo(() => rangeOf(view, anchor), [view, anchor]);

  useEffect(() => {
    let live = true;
    listAll((cursor) => api.listDeployments({ from: from.toISOString(), to: to.toISOString(), cursor, limit: 500 }), 2000)
      .then((r) => live && (setRows(r), setError(null)))
      .catch((e: Error) => live && setError(e.message));
    plannedOccurrences(from, to).then((p) => live && setPlanned(p)).catch(() => live && setPlanned([]));
    return () => {
      live = false;
    };
  }, [from, to, n]);

  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useDeploymentEvents(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => setN((x) => x + 1), 500);
  });

  const byDay = useMemo(() => {
    const m = new Map<string, ScheduledDeployment[]>();
    for (const d of [...rows].sort((a, b) => a.run_at.localeCompare(b.run_at))) {
      const k = dayjs(d.run_at).format('YYYY-MM-DD');
      m.set(k, [...(m.get(k) ?? []), d]);
    }
    return m;
  }, [rows]);
  // Planned occurrences that are rows already (materialized) are shown as the rows.
  const plannedByDay = useMemo(() => {
    const made = new Set(rows.filter((d) => d.schedule_id).map((d) => `${d.schedule_id}@${new Date(d.run_at).toISOString()}`));
    const m = new Map<string, Planned[]>();
    for (const p of planned) {
      if (made.has(p.key)) continue;
      const k = dayjs(p.run_at).format('YYYY-MM-DD');
      m.set(k, [...(m.get(k) ?? []), p]);
    }
    return m;
  }, [rows, planned]);

  const week = Array.from({ length: 7 }, (_, i) => from.add(i, 'day'));

  return (
    <section aria-labelledby="calendar-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="calendar-title" style={{ margin: 0 }}>
          Calendar
        </Typography.Title>
        <Space wrap>
          <Typography.Text type="secondary">Times in {viewerZone()}</Typography.Text>
          <Segmented<View> aria-label="Calendar view" options={['Month', 'Week']} value={view} onChange={setView} />
        </Space>
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      {view === 'Month' ? (
        <Calendar
          value={anchor}
          onChange={setAnchor}
          onPanelChange={(d) => setAnchor(d)}
          cellRender={(date, info) => {
            if (info.type !== 'date') return info.originNode;
            const items = byDay.get(date.format('YYYY-MM-DD')) ?? [];
            const plans = plannedByDay.get(date.format('YYYY-MM-DD')) ?? [];
            if (!screens.md) return items.length + plans.length ? <Badge count={items.length + plans.length} size="small" color="blue" /> : null;
            const room = Math.max(0, 4 - items.length);
            return (
              <div>
                {items.slice(0, 4).map((d) => (
                  <Item key={d.id} d={d} />
                ))}
                {plans.slice(0, room).map((p) => (
                  <PlannedItem key={p.key} p={p} />
                ))}
                {items.length + plans.length > 4 && <Typography.Text type="secondary">+{items.length + plans.length - 4} more</Typography.Text>}
              </div>
            );
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
            {week.map((day) => {
              const items = byDay.get(day.format('YYYY-MM-DD')) ?? [];
              const plans = plannedByDay.get(day.format('YYYY-MM-DD')) ?? [];
              const today = day.isSame(dayjs(), 'day');
              return (
                <div key={day.valueOf()} style={{ flex: '1 1 140px', minWidth: 0 }}>
                  <Card size="small" title={day.format('ddd, MMM D')} style={today ? { borderColor: '#1677ff' } : undefined}>
                    {items.map((d) => <Item key={d.id} d={d} />)}
                    {plans.map((p) => <PlannedItem key={p.key} p={p} />)}
                    {!items.length && !plans.length && <Typography.Text type="secondary">—</Typography.Text>}
                  </Card>
                </div>
              );
            })}
          </Flex>
        </>
      )}
    </section>
  );
}
