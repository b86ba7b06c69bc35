/**
 * Deploy freezes: the list (when, which apps, the next window in the viewer's time), and for
 * owners "New freeze" (one-off from/to, or recurring: a cron expression and a duration, in a zone)
 * and delete. Scheduling into a freeze is refused with the next allowed time; deployments already
 * scheduled inside a new freeze are held (shown after creating it).
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import {
  Alert, App as AntApp, Button, DatePicker, Flex, Form, Input, InputNumber, List, Modal, Popconfirm, Radio, Select, Space, Table, Tag, Typography,
  type TableColumnsType,
} from 'antd';
import type { Dayjs } from 'dayjs';
import { listZones } from '../../../core/time.ts';
import { ApiError, can, freezesApi, listAll, type Freeze, type FreezeBody, type ScheduledDeployment } from '../api.ts';
import { formatInstant, formatLocal, viewerZone } from '../format.ts';
import { useSession } from '../session.tsx';
import { useApps } from '../components/useApps.ts';

interface Values {
  name: string;
  kind: 'once' | 'recurring';
  from?: Dayjs | null;
  to?: Dayjs | null;
  cron?: string;
  hours?: number | null;
  timezone: string;
  apps?: string[];
  reason?: string;
}

let zoneOptionsCache: { value: string; label: string }[] | null = null;
function zoneOptions(): { value: string; label: string }[] {
  zoneOptionsCache ??= listZones().map((z) => ({ value: z, label: z }));
  return zoneOptionsCache;
}

const wall = (d: Dayjs) => ({ year: d.year(), month: d.month() + 1, day: d.date(), hour: d.hour(), minute: d.minute() });

const FIELD_OF: Record<string, keyof Values> = {
  name: 'name', timezone: 'timezone', cron: 'cron', duration_seconds: 'hours', apps: 'apps', reason: 'reason', start: 'from', end: 'to',
};

function FreezeFormModal({ onClose, onDone }: { onClose(): void; onDone(f: Freeze & { conflicts: ScheduledDeployment[] }): void }) {
  const [form] = Form.useForm<Values>();
  const { apps } = useApps();
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const kind = Form.useWatch('kind', form) ?? 'once';
  const appOptions = useMemo(() => apps.map((a) => ({ value: a.id, label: a.name })), [apps]);

  async function onFinish(v: Values) {
    setFormError(null);
    const body: FreezeBody = { name: v.name, timezone: v.timezone, reason: v.reason?.trim() || null };
    if (v.apps?.length) body.apps = v.apps;
    if (v.kind === 'once') {
      body.start = wall(v.from!);
      body.end = wall(v.to!);
    } else {
      body.cron = v.cron!.trim();
      body.duration_seconds = Math.round((v.hours ?? 0) * 3600);
    }
    setBusy(true);
    try {
      onDone(await freezesApi.create(body));
    } catch (err) {
      const top = err instanceof ApiError && err.field ? err.field.split('.')[0] : undefined;
      if (top && FIELD_OF[top]) form.setFields([{ name: FIELD_OF[top], errors: [(err as Error).message] }]);
      else setFormError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal title="New freeze" open width={620} okText="Create freeze" onOk={() => form.submit()} onCancel={onClose} confirmLoading={busy} destroyOnHidden>
      <Form<Values> form={form} name="freeze-form" layout="vertical" requiredMark={false} onFinish={onFinish} onValuesChange={() => setFormError(null)}
        initialValues={{ kind: 'once', timezone: viewerZone(), hours: 64 }}>
        <Form.Item label="Name" name="name" rules={[{ required: true, whitespace: true, message: 'Name the freeze' }]}>
          <Input placeholder="e.g. Christmas" maxLength={200} />
        </Form.Item>
        <Form.Item label="Kind" name="kind">
          <Radio.Group optionType="button" options={[{ value: 'once', label: 'One-off' }, { value: 'recurring', label: 'Recurring' }]} />
        </Form.Item>
        {kind === 'once' ? (
          <Space wrap align="start" size="middle" style={{ display: 'flex' }}>
            <Form.Item label="From" name="from" rules={[{ required: true, message: 'Choose when it starts' }]}>
              <DatePicker showTime={{ format: 'HH:mm' }} format="YYYY-MM-DD HH:mm" needConfirm={false} style={{ width: 200 }} />
            </Form.Item>
            <Form.Item label="To" name="to" rules={[{ required: true, message: 'Choose when it ends' }]} extra="Deploying at the end itself is allowed.">
              <DatePicker showTime={{ format: 'HH:mm' }} format="YYYY-MM-DD HH:mm" needConfirm={false} style={{ width: 200 }} />
            </Form.Item>
          </Space>
        ) : (
          <Space wrap align="start" size="middle" style={{ display: 'flex' }}>
            <Form.Item label="Starts at (cron)" name="cron" rules={[{ required: true, message: 'Enter a cron expression' }]} extra='E.g. "0 16 * * 5": Fridays 16:00'>
              <Input placeholder="0 16 * * 5" style={{ fontFamily: 'monospace', width: 200 }} />
            </Form.Item>
            <Form.Item label="Lasts (hours)" name="hours" rules={[{ required: true, message: 'How long each window lasts' }]} extra="Wall-clock hours: 64 h from Friday 16:00 ends Monday 08:00, DST or not.">
              <InputNumber min={0.02} max={8784} style={{ width: 140 }} />
            </Form.Item>
          </Space>
        )}
        <Form.Item label="Timezone" name="timezone" rules={[{ required: true, message: 'Choose a time zone' }]}>
          <Select showSearch={{ optionFilterProp: 'label' }} options={zoneOptions()} virtual />
        </Form.Item>
        <Form.Item label="Applications" name="apps" extra="Leave empty to freeze every app of the team (also apps added later).">
          <Select mode="multiple" allowClear showSearch={{ optionFilterProp: 'label' }} options={appOptions} placeholder="All applications" />
        </Form.Item>
        <Form.Item label="Reason" name="reason">
          <Input placeholder="Shown to whoever tries to deploy" maxLength={1000} />
        </Form.Item>
        {formError && <Alert type="error" showIcon title={formError} role="alert" />}
      </Form>
    </Modal>
  );
}

export default function FreezesPage() {
  const { me } = useSession();
  const { message, modal } = AntApp.useApp();
  const { apps } = useApps();
  const [rows, setRows] = useState<Freeze[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);
  const mayManage = can(me, 'manage');
  const names = useMemo(() => new Map(apps.map((a) => [a.id, a.name])), [apps]);

  useEffect(() => {
    let live = true;
    listAll((c) => freezesApi.list(c))
      .then((r) => live && (setRows(r), setError(null)))
      .catch((e: Error) => live && setError(e.message))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [n]);

  const columns: TableColumnsType<Freeze> = [
    { title: 'Name', key: 'name', render: (_, f) => <Typography.Text strong>{f.name}</Typography.Text> },
    {
      title: 'When',
      key: 'when',
      render: (_, f) => (f.kind === 'once' ? (
        <Space direction="vertical" size={0}>
          <span>{formatLocal({ ...f.start!, second: 0 })} → {formatLocal({ ...f.end!, second: 0 })}</span>
          <Typography.Text type="secondary">{f.timezone}</Typography.Text>
        </Space>
      ) : (
        <Space direction="vertical" size={0}>
          <span><Typography.Text code>{f.cron}</Typography.Text> for {+(f.duration_seconds! / 3600).toFixed(2)} h <Tag>recurring</Tag></span>
          <Typography.Text type="secondary">{f.timezone}</Typography.Text>
        </Space>
      )),
    },
    { title: 'Applications', key: 'apps', render: (_, f) => (f.apps ? f.apps.map((a) => <Tag key={a}>{names.get(a) ?? a}</Tag>) : <Tag color="red">All</Tag>) },
    {
      title: 'Next window (your time)',
      key: 'next',
      render: (_, f) => (f.next_windows[0]
        ? `${formatInstant(f.next_windows[0].start, viewerZone())} → ${formatInstant(f.next_windows[0].end, viewerZone())}`
        : <Typography.Text type="secondary">over</Typography.Text>),
    },
    { title: 'Reason', key: 'reason', render: (_, f) => f.reason ?? '—' },
  ];
  if (mayManage) {
    columns.push({
      title: 'Actions',
      key: 'actions',
      render: (_, f) => (
        <Popconfirm title="Delete this freeze?" description="Deployments it holds whose time is ahead are scheduled again." okText="Delete" cancelText="Keep"
          onConfirm={async () => {
            try {
              await freezesApi.remove(f.id);
              message.success('Freeze deleted');
              reload();
            } catch (err) {
              message.error((err as Error).message);
            }
          }}>
          <Button size="small" danger aria-label={`Delete freeze ${f.name}`}>Delete</Button>
        </Popconfirm>
      ),
    });
  }

  function created(f: Freeze & { conflicts: ScheduledDeployment[] }) {
    setCreating(false);
    reload();
    if (!f.conflicts.length) {
      message.success('Freeze created');
      return;
    }
    modal.info({
      title: `Freeze created: ${f.conflicts.length} scheduled deployment(s) are now held`,
      content: (
        <List size="small" dataSource={f.conflicts} renderItem={(d) => (
          <List.Item><a href={`/deployments/${d.id}`}>{d.app.name}</a> · {formatInstant(d.run_at, viewerZone())}</List.Item>
        )} />
      ),
    });
  }

  return (
    <section aria-labelledby="freezes-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="freezes-title" style={{ margin: 0 }}>
          Freezes
        </Typography.Title>
        {mayManage && (
          <Button type="primary" onClick={() => setCreating(true)}>
            New freeze
          </Button>
        )}
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<Freeze> rowKey="id" columns={columns} dataSource={rows} loading={loading} pagination={false} scroll={{ x: true }}
        locale={{ emptyText: 'No freezes' }} />
      {creating && <FreezeFormModal onClose={() => setCreating(false)} onDone={created} />}
    </section>
  );
}
