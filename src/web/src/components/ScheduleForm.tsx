/**
 * "New Schedule": a recurring deployment from presets (every weekday at…, weekly on…, every day
 * at…) or a custom cron expression, in a chosen zone. The next 5 runs come live from
 * GET /v1/schedules/preview (the server's maths, DST policies included), in the schedule's zone
 * and the viewer's, with a note where a daylight-saving change applies.
 */
import { useEffect, useMemo, useState } from 'react';
import { Alert, App as AntApp, Collapse, Form, Input, InputNumber, List, Modal, Radio, Select, Space, Tag, TimePicker, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import { listZones } from '../../../core/time.ts';
import { ApiError, api, type App, type DstGap, type DstOverlap, type PreviewRun, type Schedule, type ScheduleBody } from '../api.ts';
import { formatInstant, formatLocal, viewerZone } from '../format.ts';

type Preset = 'weekdays' | 'weekly' | 'daily' | 'custom';

interface Values {
  app?: string;
  preset: Preset;
  time?: Dayjs | null;
  weekday: number;
  cron?: string;
  timezone: string;
  dependency?: string | null;
  lead: number | null;
  dst_gap: DstGap;
  dst_overlap: DstOverlap;
  expiry: number | null;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** The cron expression the form describes, or null while incomplete. */
export function cronOf(v: Partial<Values>): string | null {
  if (v.preset === 'custom') return v.cron?.trim() || null;
  if (!v.time) return null;
  const hm = `${v.time.minute()} ${v.time.hour()}`;
  if (v.preset === 'weekdays') return `${hm} * * 1-5`;
  if (v.preset === 'daily') return `${hm} * * *`;
  if (v.preset === 'weekly') return `${hm} * * ${v.weekday ?? 1}`;
  return null;
}

let zoneOptionsCache: { value: string; label: string }[] | null = null;
function zoneOptions(): { value: string; label: string }[] {
  zoneOptionsCache ??= listZones().map((z) => ({ value: z, label: z }));
  return zoneOptionsCache;
}

const FIELD_OF: Record<string, keyof Values> = {
  app: 'app', cron: 'cron', timezone: 'timezone', dependency: 'dependency', dependency_lead_seconds: 'lead', expires_after_seconds: 'expiry',
  dst_gap: 'dst_gap', dst_overlap: 'dst_overlap',
};

type PreviewState = { kind: 'idle' } | { kind: 'loading' } | { kind: 'ok'; runs: PreviewRun[] } | { kind: 'error'; message: string };

/** The next runs of (cron, zone, policies), fetched from the server as the form changes (debounced). */
function usePreview(cron: string | null, timezone: string | undefined, dstGap: DstGap, dstOverlap: DstOverlap): PreviewState {
  const [state, setState] = useState<PreviewState>({ kind: 'idle' });
  useEffect(() => {
    if (!cron || !timezone) {
      setState({ kind: 'idle' });
      return;
    }
    let live = true;
    setState({ kind: 'loading' });
    const t = setTimeout(() => {
      api.previewSchedule({ cron, timezone, count: 5, dst_gap: dstGap, dst_overlap: dstOverlap })
        .then((r) => live && setState({ kind: 'ok', runs: r.result }))
        .catch((e: Error) => live && setState({ kind: 'error', message: e.message }));
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [cron, timezone, dstGap, dstOverlap]);
  return state;
}

interface Props {
  open: boolean;
  apps: App[];
  onClose(): void;
  onDone(s: Schedule): void;
}

export function ScheduleFormModal({ open, apps, onClose, onDone }: Props) {
  const [form] = Form.useForm<Values>();
  const { message } = AntApp.useApp();
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const initialValues: Values = {
    preset: 'weekdays', time: null, weekday: 1, timezone: viewerZone(), dependency: null, lead: 15, dst_gap: 'shift', dst_overlap: 'first', expiry: 60,
  };
  const values = Form.useWatch((all: Values) => all, { form, preserve: true }) as Partial<Values> | undefined;
  const cron = cronOf(values ?? {});
  const preview = usePreview(cron, values?.timezone, values?.dst_gap ?? 'shift', values?.dst_overlap ?? 'first');
  const appOptions = useMemo(() => apps.map((a) => ({ value: a.id, label: a.name })), [apps]);
  const dependencyOptions = useMemo(() => appOptions.filter((o) => o.value !== values?.app), [appOptions, values?.app]);
  const preset = values?.preset ?? 'weekdays';
  const zone = values?.timezone ?? viewerZone();
  const notes = preview.kind === 'ok' ? preview.runs.filter((r) => r.note) : [];

  async function onFinish(v: Values) {
    setFormError(null);
    const expr = cronOf(v);
    if (!expr) {
      form.setFields([{ name: v.preset === 'custom' ? 'cron' : 'time', errors: [v.preset === 'custom' ? 'Enter a cron expression' : 'Choose a time'] }]);
      return;
    }
    const body: ScheduleBody = {
      app: v.app!, cron: expr, timezone: v.timezone, dst_gap: v.dst_gap, dst_overlap: v.dst_overlap,
      expires_after_seconds: Math.max(1, Math.round((v.expiry ?? 60) * 60)),
    };
    if (v.dependency) {
      body.dependency = v.dependency;
      body.dependency_lead_seconds = Math.round((v.lead ?? 0) * 60);
    }
    setBusy(true);
    try {
      const s = await api.createSchedule(body);
      message.success('Schedule created');
      onDone(s);
    } catch (err) {
      if (err instanceof ApiError && err.field && FIELD_OF[err.field]) {
        const field = err.field === 'cron' && v.preset !== 'custom' ? 'time' : FIELD_OF[err.field];
        form.setFields([{ name: field, errors: [err.message] }]);
      } else setFormError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal title="New Schedule" open={open} width={680} okText="Create schedule" onOk={() => form.submit()} onCancel={onClose} confirmLoading={busy} destroyOnHidden>
      <Form<Values> form={form} name="schedule-form" layout="vertical" initialValues={initialValues} onFinish={onFinish} onValuesChange={() => setFormError(null)} requiredMark={false}>
        <Form.Item label="Application" name="app" rules={[{ required: true, message: 'Choose the application to deploy' }]}>
          <Select showSearch={{ optionFilterProp: 'label' }} options={appOptions} placeholder="Search applications"
            onChange={(id: string) => { if (form.getFieldValue('dependency') === id) form.setFieldValue('dependency', null); }} />
        </Form.Item>
        <Form.Item label="Repeat" name="preset">
          <Radio.Group
            optionType="button"
            options={[
              { value: 'weekdays', label: 'Every weekday at…' },
              { value: 'weekly', label: 'Weekly on…' },
              { value: 'daily', label: 'Every day at…' },
              { value: 'custom', label: 'Custom cron' },
            ]}
          />
        </Form.Item>
        {preset === 'custom' ? (
          <Form.Item label="Cron expression" name="cron" rules={[{ required: true, message: 'Enter a cron expression' }]}
            extra="5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first. E.g. 30 9 * * 1-5">
            <Input placeholder="30 9 * * 1-5" style={{ fontFamily: 'monospace' }} />
          </Form.Item>
        ) : (
          <Space wrap align="start" size="middle" style={{ display: 'flex' }}>
            {preset === 'weekly' && (
              <Form.Item label="Day of week" name="weekday">
                <Select options={WEEKDAYS.map((d, i) => ({ value: i, label: d }))} style={{ width: 160 }} />
              </Form.Item>
            )}
            <Form.Item label="Time" name="time" rules={[{ required: true, message: 'Choose a time' }]}>
              <TimePicker format="HH:mm" showNow={false} needConfirm={false} style={{ width: 120 }} />
            </Form.Item>
            {cron && (
              <Form.Item label="As cron">
                <Typography.Text code>{cron}</Typography.Text>
              </Form.Item>
            )}
          </Space>
        )}
        <Form.Item label="Timezone" name="timezone" rules={[{ required: true, message: 'Choose a time zone' }]}>
          <Select showSearch={{ optionFilterProp: 'label' }} options={zoneOptions()} virtual />
        </Form.Item>
        <Form.Item label="Dependency" name="dependency" extra="Deployed first, a lead time before each occurrence; the occurrence runs only if it succeeds.">
          <Select showSearch={{ optionFilterProp: 'label' }} allowClear options={dependencyOptions} placeholder="None" />
        </Form.Item>
        <div aria-live="polite" data-testid="schedule-preview" style={{ marginBottom: 16 }}>
          {preview.kind === 'ok' && (
            <>
              <Typography.Text strong>Next runs</Typography.Text>
              <List
                size="small"
                aria-label="Next runs"
                dataSource={preview.runs}
                renderItem={(r) => (
                  <List.Item>
                    <Space wrap size={4}>
                      <span>{formatLocal(r.local)} (UTC{r.utc_offset}, {zone})</span>
                      <Typography.Text type="secondary">· your time ({viewerZone()}): {formatInstant(r.run_at, viewerZone())}</Typography.Text>
                      {r.note && <Tag color="orange">{r.note}</Tag>}
                    </Space>
                  </List.Item>
                )}
              />
              {notes.length > 0 && (
                <Alert type="info" showIcon style={{ marginTop: 8 }} title="Daylight saving applies"
                  description={notes.map((n) => `${formatLocal(n.local)}: ${n.note === 'repeated hour'
                    ? (values?.dst_overlap === 'both' ? 'this wall time occurs twice; it runs at both' : 'this wall time occurs twice; it runs once, at the first')
                    : 'this wall time does not exist that day; moved forward by the gap'}`).join(' · ')} />
              )}
            </>
          )}
          {preview.kind === 'error' && <Alert type="error" showIcon title={preview.message} />}
          {preview.kind === 'loading' && <Typography.Text type="secondary">Computing the next runs…</Typography.Text>}
        </div>
        <Collapse size="small" items={[{
          key: 'advanced', label: 'Advanced', forceRender: true,
          children: (
            <>
              <Form.Item label="Dependency lead (minutes)" name="lead" extra="How long before each occurrence its dependency runs.">
                <InputNumber min={0} precision={0} style={{ width: 120 }} />
              </Form.Item>
              <Form.Item label="Expire after (minutes)" name="expiry" extra="An occurrence that cannot start within this long after its time is marked missed instead of running late.">
                <InputNumber min={1} precision={0} style={{ width: 120 }} />
              </Form.Item>
              <Form.Item label="Skipped time (DST gap)" name="dst_gap">
                <Radio.Group options={[{ value: 'shift', label: 'Shift forward by the gap (02:30 → 03:30)' }, { value: 'skip', label: 'Skip that run' }]} />
              </Form.Item>
              <Form.Item label="Repeated time (DST overlap)" name="dst_overlap">
                <Radio.Group options={[{ value: 'first', label: 'Run once, at the first' }, { value: 'both', label: 'Run at both' }]} />
              </Form.Item>
            </>
          ),
        }]} />
        {formError && <Alert type="error" showIcon title={formError} style={{ marginTop: 16 }} role="alert" />}
      </Form>
    </Modal>
  );
}
