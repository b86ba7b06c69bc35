/**
 * The "Schedule Deployment" modal users know from the original product (Application, Date, Time,
 * Dependency), done right: the zone is chosen, not guessed; the UTC instant and the viewer's own
 * time are shown live; a wall time skipped by daylight saving is refused before submitting and a
 * repeated one asks "earlier or later". The same modal reschedules an existing deployment.
 * Zone maths is src/core/time.ts, shared with the server, so both sides agree.
 */
import { useEffect, useMemo, useState } from 'react';
import { Alert, App as AntApp, Collapse, DatePicker, Form, InputNumber, Modal, Radio, Select, Space, TimePicker, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { listZones, localTimeAt, resolveLocalTime } from '../../../core/time.ts';
import { ValidationError } from '../../../core/errors.ts';
import { ApiError, api, type App, type ScheduleRequest, type ScheduledDeployment } from '../api.ts';
import { formatDuration, formatInstant, formatUtc, viewerZone } from '../format.ts';

type Unit = 'seconds' | 'minutes' | 'hours';
const UNIT_SECONDS: Record<Unit, number> = { seconds: 1, minutes: 60, hours: 3600 };
const UNIT_OPTIONS = (['seconds', 'minutes', 'hours'] as Unit[]).map((u) => ({ value: u, label: u }));

interface Values {
  app?: string;
  date?: Dayjs | null;
  time?: Dayjs | null;
  second?: number | null;
  timezone: string;
  dependency?: string | null;
  disambiguation: 'earlier' | 'later';
  lead: number | null;
  leadUnit: Unit;
  expiry: number | null;
  expiryUnit: Unit;
}

export type ScheduleTarget = { kind: 'create'; appId?: string } | { kind: 'reschedule'; deployment: ScheduledDeployment };

interface Props {
  open: boolean;
  target: ScheduleTarget;
  apps: App[];
  onClose(): void;
  onDone(result: ScheduledDeployment): void;
}

let zoneOptionsCache: { value: string; label: string }[] | null = null;
function zoneOptions(current: string): { value: string; label: string }[] {
  zoneOptionsCache ??= listZones().map((z) => ({ value: z, label: z }));
  return zoneOptionsCache.some((o) => o.value === current) ? zoneOptionsCache : [{ value: current, label: current }, ...zoneOptionsCache];
}

/** Split seconds into the largest unit that divides them, for the Advanced fields. */
function toUnit(seconds: number): [number, Unit] {
  if (seconds >= 3600 && seconds % 3600 === 0) return [seconds / 3600, 'hours'];
  if (seconds >= 60 && seconds % 60 === 0) return [seconds / 60, 'minutes'];
  return [seconds, 'seconds'];
}

/** How long after its instant a deployment may still start (its expiry window). */
function expirySecondsOf(d: ScheduledDeployment): number {
  const s = d.expires_at ? Math.round((Date.parse(d.expires_at) - Date.parse(d.run_at)) / 1000) : 3600;
  return Number.isFinite(s) && s > 0 ? s : 3600;
}

/** Which form field a server error's `field` belongs to. */
const FIELD_OF: Record<string, keyof Values> = {
  app: 'app', year: 'date', month: 'date', day: 'date', date: 'date', hour: 'time', minute: 'time', time: 'time',
  second: 'second', timezone: 'timezone', dependency: 'dependency', disambiguation: 'disambiguation',
  dependency_lead_seconds: 'lead', expires_after_seconds: 'expiry',
};

type Resolution =
  | { kind: 'incomplete' }
  | { kind: 'error'; code: string; message: string; field: keyof Values }
  | { kind: 'ok'; epochMs: number; utcOffset: string; ambiguous: false }
  | { kind: 'ok'; epochMs: number; utcOffset: string; ambiguous: true; earlier: { epochMs: number; utcOffset: string }; later: { epochMs: number; utcOffset: string } };

function resolve(v: Partial<Values>): Resolution {
  if (!v.date || !v.time || !v.timezone) return { kind: 'incomplete' };
  const local = {
    year: v.date.year(), month: v.date.month() + 1, day: v.date.date(),
    hour: v.time.hour(), minute: v.time.minute(), second: v.second ?? 0,
  };
  try {
    const earlier = resolveLocalTime(local, v.timezone, 'earlier');
    if (!earlier.ambiguous) return { kind: 'ok', epochMs: earlier.epochMs, utcOffset: earlier.utcOffset, ambiguous: false };
    const later = resolveLocalTime(local, v.timezone, 'later');
    const chosen = v.disambiguation === 'later' ? later : earlier;
    return { kind: 'ok', epochMs: chosen.epochMs, utcOffset: chosen.utcOffset, ambiguous: true, earlier, later };
  } catch (err) {
    if (err instanceof ValidationError) {
      return { kind: 'error', code: err.code, message: err.message, field: FIELD_OF[err.field ?? ''] ?? 'time' };
    }
    throw err;
  }
}

export function ScheduleModal({ open, target, apps, onClose, onDone }: Props) {
  const [form] = Form.useForm<Values>();
  const { message } = AntApp.useApp();
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());
  const reschedule = target.kind === 'reschedule' ? target.deployment : null;

  // "now" moves, so a time that was in the future can become past while the modal is open.
  useEffect(() => {
    if (!open) return;
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, [open]);

  const initialValues = useMemo<Values>(() => {
    if (reschedule) {
      const l = reschedule.local;
      const [lead, leadUnit] = toUnit(reschedule.dependency_lead_seconds ?? 900);
      const [expiry, expiryUnit] = toUnit(expirySecondsOf(reschedule));
      return {
        app: reschedule.app.id,
        date: dayjs(new Date(l.year, l.month - 1, l.day)),
        time: dayjs(new Date(l.year, l.month - 1, l.day, l.hour, l.minute)),
        second: l.second,
        timezone: reschedule.timezone,
        dependency: reschedule.dependency?.app.id ?? null,
        disambiguation: 'earlier',
        lead, leadUnit, expiry, expiryUnit,
      };
    }
    return {
      app: target.kind === 'create' ? target.appId : undefined,
      date: null, time: null, second: 0,
      timezone: viewerZone(), dependency: null, disambiguation: 'earlier',
      lead: 15, leadUnit: 'minutes', expiry: 60, expiryUnit: 'minutes',
    };
    // The modal is destroyed when hidden, so these are read once per opening.
  }, [reschedule, target]);

  const values = Form.useWatch((all: Values) => all, { form, preserve: true }) as Partial<Values> | undefined;
  const resolution = useMemo(() => resolve(values ?? {}), [values]);
  const leadSeconds = (values?.lead ?? 0) * UNIT_SECONDS[values?.leadUnit ?? 'minutes'];
  const appId = values?.app;
  const hasDependency = reschedule ? !!reschedule.dependency : !!values?.dependency;
  const zone = values?.timezone ?? viewerZone();
  const todayInZone = useMemo(() => {
    try {
      const t = localTimeAt(now, zone);
      return `${t.year}-${String(t.month).padStart(2, '0')}-${String(t.day).padStart(2, '0')}`;
    } catch {
      return dayjs(now).format('YYYY-MM-DD');
    }
  }, [now, zone]);

  const appOptions = useMemo(() => apps.map((a) => ({ value: a.id, label: a.name })), [apps]);
  const dependencyOptions = useMemo(() => appOptions.filter((o) => o.value !== appId), [appOptions, appId]);

  async function onFinish(v: Values) {
    setFormError(null);
    const r = resolve(v);
    if (r.kind === 'error') {
      form.setFields([{ name: r.field, errors: [r.message] }]);
      return;
    }
    const body: ScheduleRequest = {
      year: v.date!.year(), month: v.date!.month() + 1, day: v.date!.date(),
      hour: v.time!.hour(), minute: v.time!.minute(), second: v.second ?? 0,
      timezone: v.timezone,
      disambiguation: v.disambiguation ?? 'earlier',
    };
    const lead = (v.lead ?? 0) * UNIT_SECONDS[v.leadUnit];
    const expiry = (v.expiry ?? 0) * UNIT_SECONDS[v.expiryUnit];
    if (reschedule) {
      if (reschedule.dependency && lead !== (reschedule.dependency_lead_seconds ?? 900)) body.dependency_lead_seconds = lead;
      if (expiry !== expirySecondsOf(reschedule)) body.expires_after_seconds = expiry;
    } else {
      body.app = v.app;
      if (v.dependency) {
        body.dependency = v.dependency;
        body.dependency_lead_seconds = lead;
      }
      body.expires_after_seconds = expiry;
    }
    setBusy(true);
    try {
      const res = reschedule ? await api.reschedule(reschedule.id, body) : await api.schedule(body);
      message.success(reschedule ? 'Deployment rescheduled' : 'Deployment scheduled');
      if ('approval_reset' in res.result && res.result.approval_reset) {
        message.warning('Moved by more than its expiry: its approvals were reset and must be given again');
      }
      onDone(res.result);
    } catch (err) {
      if (err instanceof ApiError) {
        const field = err.field ? FIELD_OF[err.field] : err.code === 'past_instant' ? 'time' : undefined;
        if (field) form.setFields([{ name: field, errors: [err.message] }]);
        else setFormError(err.message);
      } else {
        setFormError((err as Error).message);
      }
    } finally {
      setBusy(false);
    }
  }

  const gap = resolution.kind === 'error' && resolution.code === 'nonexistent_local_time';
  const past = resolution.kind === 'ok' && resolution.epochMs <= now;
  const depPast = resolution.kind === 'ok' && hasDependency && resolution.epochMs - leadSeconds * 1000 <= now;

  return (
    <Modal
      title={reschedule ? 'Reschedule Deployment' : 'Schedule Deployment'}
      open={open}
      width={640}
      okText={reschedule ? 'Reschedule' : 'Schedule'}
      onOk={() => form.submit()}
      onCancel={onClose}
      confirmLoading={busy}
      destroyOnHidden
      forceRender={false}
    >
      <Form<Values>
        form={form}
        name="schedule"
        layout="vertical"
        initialValues={initialValues}
        onFinish={onFinish}
        onValuesChange={() => setFormError(null)}
        requiredMark={false}
      >
        <Form.Item label="Application" name="app" rules={[{ required: true, message: 'Choose the application to deploy' }]}>
          <Select
            showSearch={{ optionFilterProp: 'label' }}
            options={appOptions}
            placeholder="Search applications"
            disabled={!!reschedule}
            onChange={(id: string) => {
              if (form.getFieldValue('dependency') === id) form.setFieldValue('dependency', null);
            }}
          />
        </Form.Item>
        <Space wrap align="start" size="middle" style={{ display: 'flex' }}>
          <Form.Item label="Date" name="date" rules={[{ required: true, message: 'Choose a date' }]}>
            <DatePicker
              format="YYYY-MM-DD"
              disabledDate={(d) => d.format('YYYY-MM-DD') < todayInZone}
              style={{ width: 170 }}
            />
          </Form.Item>
          <Form.Item
            label="Time"
            name="time"
            dependencies={['date', 'timezone', 'second', 'disambiguation']}
            rules={[
              { required: true, message: 'Choose a time' },
              {
                validator: async () => {
                  const r = resolve(form.getFieldsValue(true) as Values);
                  if (r.kind === 'error' && r.field === 'time') throw new Error(r.message);
                  if (r.kind === 'ok' && r.epochMs <= Date.now()) throw new Error('That time is in the past');
                },
              },
            ]}
          >
            <TimePicker use12Hours format="h:mm A" showNow={false} needConfirm={false} style={{ width: 140 }} />
          </Form.Item>
        </Space>
        <Form.Item label="Timezone" name="timezone" rules={[{ required: true, message: 'Choose a time zone' }]}>
          <Select showSearch={{ optionFilterProp: 'label' }} options={zoneOptions(zone)} virtual />
        </Form.Item>
        <Form.Item
          label="Dependency"
          name="dependency"
          extra={reschedule ? 'The dependency moves with the deployment.' : 'Deployed first, a lead time before; this deployment runs only if it succeeds.'}
        >
          <Select
            showSearch={{ optionFilterProp: 'label' }}
            allowClear
            options={reschedule?.dependency ? [{ value: reschedule.dependency.app.id, label: reschedule.dependency.app.name }] : dependencyOptions}
            placeholder="None"
            disabled={!!reschedule}
          />
        </Form.Item>
        {resolution.kind === 'ok' && resolution.ambiguous && (
          <Form.Item
            label="Repeated time"
            name="disambiguation"
            extra="This wall time happens twice (daylight saving time ends). Which one?"
          >
            <Radio.Group
              options={[
                { value: 'earlier', label: `Earlier (UTC${resolution.earlier.utcOffset}, ${formatUtc(resolution.earlier.epochMs)})` },
                { value: 'later', label: `Later (UTC${resolution.later.utcOffset}, ${formatUtc(resolution.later.epochMs)})` },
              ]}
            />
          </Form.Item>
        )}
        <div aria-live="polite" style={{ marginBottom: 16 }} data-testid="schedule-preview">
          {resolution.kind === 'ok' && (
            <Typography.Text>
              Runs at <strong>{formatUtc(resolution.epochMs)}</strong> (UTC{resolution.utcOffset} in {zone}) · your time ({viewerZone()}):{' '}
              <strong>{formatInstant(resolution.epochMs, viewerZone(), true)}</strong>
              {hasDependency && leadSeconds > 0 && (
                <>
                  <br />
                  Dependency runs {formatDuration(leadSeconds)} earlier, at {formatInstant(resolution.epochMs - leadSeconds * 1000, viewerZone(), true)} your time.
                </>
              )}
            </Typography.Text>
          )}
          {gap && (
            <Alert type="error" showIcon title="This time does not exist in the chosen zone" description={resolution.message} />
          )}
          {past && <Alert type="warning" showIcon title="That time is in the past" />}
          {!past && depPast && <Alert type="warning" showIcon title="The dependency's time (lead before) is already past" />}
        </div>
        <Collapse
          size="small"
          items={[
            {
              key: 'advanced',
              label: 'Advanced',
              forceRender: true,
              children: (
                <>
                  <Form.Item label="Dependency lead" htmlFor="schedule_lead" extra="How long before this deployment its dependency runs.">
                    <Space.Compact>
                      <Form.Item name="lead" noStyle rules={[{ type: 'number', min: 0 }]}>
                        <InputNumber min={0} precision={0} style={{ width: 120 }} />
                      </Form.Item>
                      <Form.Item name="leadUnit" noStyle>
                        <Select options={UNIT_OPTIONS} aria-label="Dependency lead unit" style={{ width: 110 }} />
                      </Form.Item>
                    </Space.Compact>
                  </Form.Item>
                  <Form.Item label="Expire after" htmlFor="schedule_expiry" extra="If it cannot start within this long after its time, it is marked missed instead of running late.">
                    <Space.Compact>
                      <Form.Item name="expiry" noStyle rules={[{ type: 'number', min: 1 }]}>
                        <InputNumber min={1} precision={0} style={{ width: 120 }} />
                      </Form.Item>
                      <Form.Item name="expiryUnit" noStyle>
                        <Select options={UNIT_OPTIONS} aria-label="Expiry unit" style={{ width: 110 }} />
                      </Form.Item>
                    </Space.Compact>
                  </Form.Item>
                  <Form.Item label="Second" name="second" extra="Seconds past the minute (0–59).">
                    <InputNumber min={0} max={59} precision={0} style={{ width: 120 }} />
                  </Form.Item>
                </>
              ),
            },
          ]}
        />
        {formError && <Alert type="error" showIcon title={formError} style={{ marginTop: 16 }} role="alert" />}
      </Form>
    </Modal>
  );
}
