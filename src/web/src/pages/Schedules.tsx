/**
 * Recurring schedules: the list with each one's next run (in its zone and the viewer's), pause,
 * resume and delete (deployers), and "New schedule". Occurrences are ordinary deployments: they
 * show on the Deployments and Calendar pages too.
 */
import { useCallback, useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Flex, Popconfirm, Space, Table, Tag, Typography, type TableColumnsType } from 'antd';
import { api, can, listAll, type Schedule } from '../api.ts';
import { formatInstant, viewerZone } from '../format.ts';
import { useSession } from '../session.tsx';
import { ScheduleFormModal } from '../components/ScheduleForm.tsx';
import { useApps } from '../components/useApps.ts';

function stateOf(s: Schedule): { label: string; color: string } {
  if (s.paused) return { label: 'paused', color: 'orange' };
  if (!s.next_runs.length) return { label: 'ended', color: 'default' };
  return { label: 'active', color: 'green' };
}

export default function SchedulesPage() {
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const { apps } = useApps();
  const [rows, setRows] = useState<Schedule[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);
  const mayChange = can(me, 'schedule');

  useEffect(() => {
    let live = true;
    listAll((c) => api.listSchedules(c))
      .then((r) => live && (setRows(r), setError(null)))
      .catch((e: Error) => live && setError(e.message))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [n]);

  // Next runs move on as time passes.
  useEffect(() => {
    const t = setInterval(reload, 30_000);
    return () => clearInterval(t);
  }, [reload]);

  async function act(what: string, fn: () => Promise<unknown>) {
    try {
      await fn();
      message.success(what);
      reload();
    } catch (err) {
      message.error((err as Error).message);
    }
  }

  const columns: TableColumnsType<Schedule> = [
    { title: 'Application', key: 'app', render: (_, s) => s.app.name },
    {
      title: 'When',
      key: 'cron',
      render: (_, s) => (
        <Space direction="vertical" size={0}>
          <Typography.Text code>{s.cron}</Typography.Text>
          <Typography.Text type="secondary">{s.timezone}</Typography.Text>
        </Space>
      ),
    },
    {
      title: 'Next run',
      key: 'next',
      render: (_, s) => (s.next_runs[0] ? (
        <Space direction="vertical" size={0}>
          <span>{formatInstant(s.next_runs[0], s.timezone)} <Typography.Text type="secondary">({s.timezone})</Typography.Text></span>
          <Typography.Text type="secondary">your time: {formatInstant(s.next_runs[0], viewerZone())}</Typography.Text>
        </Space>
      ) : '—'),
    },
    { title: 'After', key: 'dep', render: (_, s) => (s.dependency ? `${s.dependency.name}, ${Math.round((s.dependency_lead_seconds ?? 0) / 60)} min before` : '—') },
    { title: 'State', key: 'state', render: (_, s) => <Tag color={stateOf(s).color}>{stateOf(s).label}</Tag> },
  ];
  if (mayChange) {
    columns.push({
      title: 'Actions',
      key: 'actions',
      render: (_, s) => (
        <Space size={4} wrap>
          {s.paused ? (
            <Button size="small" onClick={() => act('Schedule resumed', () => api.resumeSchedule(s.id))} aria-label={`Resume schedule of ${s.app.name}`}>Resume</Button>
          ) : (
            <Button size="small" onClick={() => act('Schedule paused', () => api.pauseSchedule(s.id))} aria-label={`Pause schedule of ${s.app.name}`}>Pause</Button>
          )}
          <Popconfirm title="Delete this schedule?" description="Its occurrences that have not started are canceled." okText="Delete" cancelText="Keep"
            onConfirm={() => act('Schedule deleted', () => api.deleteSchedule(s.id))}>
            <Button size="small" danger aria-label={`Delete schedule of ${s.app.name}`}>Delete</Button>
          </Popconfirm>
        </Space>
      ),
    });
  }

  return (
    <section aria-labelledby="schedules-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="schedules-title" style={{ margin: 0 }}>
          Schedules
        </Typography.Title>
        {mayChange && (
          <Button type="primary" onClick={() => setCreating(true)}>
            New schedule
          </Button>
        )}
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<Schedule> rowKey="id" columns={columns} dataSource={rows} loading={loading} pagination={false} scroll={{ x: true }}
        locale={{ emptyText: 'No schedules yet' }} />
      {creating && (
        <ScheduleFormModal open apps={apps} onClose={() => setCreating(false)} onDone={() => { setCreating(false); reload(); }} />
      )}
    </section>
  );
}
