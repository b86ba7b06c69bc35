/**
 * Notification subscriptions (owners): where final states are POSTed, in which format, signed or
 * not, and the reminder lead: that long before each scheduled deployment a reminder goes out
 * with one-click postpone/approve links.
 */
import { useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Checkbox, Flex, Form, Input, InputNumber, Modal, Popconfirm, Select, Table, Tag, Typography } from 'antd';
import { ApiError, listAll, notificationsApi, type NotifyEvent, type Subscription, type SubscriptionBody } from '../api.ts';
import { formatInstant } from '../format.ts';

const EVENTS: NotifyEvent[] = ['failed', 'missed', 'skipped', 'succeeded', 'approval_requested', 'approved', 'rejected'];
/** The lead in minutes; the API takes seconds, 60 s to 7 days. */
const MIN_MINUTES = 1;
const MAX_MINUTES = 7 * 24 * 60;

interface FormValues {
  url: string;
  events: NotifyEvent[];
  format: 'json' | 'slack';
  secret?: string;
  remind: boolean;
  remind_minutes?: number;
}

export function formatLead(seconds: number | null): string {
  if (seconds === null) return 'off';
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d before`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h before`;
  if (seconds % 60 === 0) return `${seconds / 60} min before`;
  return `${seconds} s before`;
}

function SubscriptionForm({ editing, onClose, onSaved }: { editing: Subscription | null; onClose(): void; onSaved(): void }) {
  const [form] = Form.useForm<FormValues>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const remind = Form.useWatch('remind', form);

  async function onFinish(v: FormValues) {
    setBusy(true);
    setError(null);
    const remind_before_seconds = v.remind && v.remind_minutes ? Math.round(v.remind_minutes * 60) : null;
    try {
      if (editing) {
        await notificationsApi.update(editing.id, { url: v.url.trim(), events: v.events, format: v.format, remind_before_seconds, ...(v.secret ? { secret: v.secret } : {}) });
      } else {
        const body: SubscriptionBody = { url: v.url.trim(), events: v.events, format: v.format, remind_before_seconds, ...(v.secret ? { secret: v.secret } : {}) };
        await notificationsApi.create(body);
      }
      onSaved();
    } catch (err) {
      if (err instanceof ApiError && err.field === 'remind_before_seconds') form.setFields([{ name: 'remind_minutes', errors: [err.message] }]);
      else if (err instanceof ApiError && err.field && ['url', 'events', 'format', 'secret'].includes(err.field)) form.setFields([{ name: err.field as keyof FormValues, errors: [err.message] }]);
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const initial: FormValues = editing
    ? { url: editing.url, events: editing.events, format: editing.format, remind: editing.remind_before_seconds !== null, remind_minutes: editing.remind_before_seconds ? editing.remind_before_seconds / 60 : 15 }
    : { url: '', events: ['failed', 'missed'], format: 'json', remind: false, remind_minutes: 15 };

  return (
    <Modal open title={editing ? 'Edit subscription' : 'New subscription'} okText={editing ? 'Save' : 'Create'} onOk={() => form.submit()} onCancel={onClose} confirmLoading={busy} destroyOnHidden>
      <Form<FormValues> form={form} name="subscription" layout="vertical" initialValues={initial} onFinish={onFinish}>
        <Form.Item label="URL" name="url" extra="Where to POST, e.g. a Slack incoming-webhook URL." rules={[{ required: true, whitespace: true, message: 'Enter a URL' }]}>
          <Input autoFocus maxLength={2048} placeholder="https://hooks.slack.com/services/…" />
        </Form.Item>
        <Form.Item label="Events" name="events" rules={[{ required: true, type: 'array', min: 1, message: 'Choose at least one' }]}>
          <Checkbox.Group options={EVENTS.map((e) => ({ label: e, value: e }))} />
        </Form.Item>
        <Form.Item label="Format" name="format">
          <Select options={[{ value: 'json', label: 'JSON (the event object)' }, { value: 'slack', label: 'Slack (text and buttons)' }]} />
        </Form.Item>
        <Form.Item label="Signing secret" name="secret" extra={editing?.has_secret ? 'Set: leave empty to keep it.' : 'Optional: deliveries carry X-Shipclock-Signature.'}>
          <Input.Password maxLength={1024} autoComplete="new-password" />
        </Form.Item>
        <Form.Item name="remind" valuePropName="checked" style={{ marginBottom: 8 }}>
          <Checkbox>Remind before each deployment, with postpone/approve links</Checkbox>
        </Form.Item>
        {remind && (
          <Form.Item
            label="Reminder lead (minutes)"
            name="remind_minutes"
            extra="From 1 minute to 7 days (10080 minutes). A deployment scheduled with less time left is reminded at once."
            rules={[{ required: true, message: 'Enter the lead in minutes' }]}
          >
            <InputNumber min={MIN_MINUTES} max={MAX_MINUTES} precision={0} />
          </Form.Item>
        )}
        {error && <Alert type="error" showIcon title={error} role="alert" />}
      </Form>
    </Modal>
  );
}

export default function NotificationsPage() {
  const { message } = AntApp.useApp();
  const [rows, setRows] = useState<Subscription[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<Subscription | 'new' | null>(null);
  const [n, setN] = useState(0);

  useEffect(() => {
    setLoading(true);
    listAll((c) => notificationsApi.list(c))
      .then((r) => (setRows(r), setError(null)))
      .catch((e: Error) => setError(e.message))
      .finally(() => setLoading(false));
  }, [n]);

  return (
    <section aria-labelledby="notifications-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="notifications-title" style={{ margin: 0 }}>
          Notifications
        </Typography.Title>
        <Button type="primary" onClick={() => setEditing('new')}>
          New subscription
        </Button>
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<Subscription>
        rowKey="id"
        size="middle"
        loading={loading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No subscriptions' }}
        columns={[
          { title: 'Receiver', key: 'url', render: (_, s) => hostOf(s.url) },
          { title: 'Events', key: 'events', render: (_, s) => s.events.map((e) => <Tag key={e}>{e}</Tag>) },
          { title: 'Format', dataIndex: 'format', key: 'format' },
          { title: 'Reminder', key: 'remind', render: (_, s) => formatLead(s.remind_before_seconds) },
          { title: 'Signed', key: 'signed', render: (_, s) => (s.has_secret ? 'yes' : 'no') },
          { title: 'Created', key: 'created', render: (_, s) => formatInstant(s.created_at) },
          {
            title: 'Actions',
            key: 'actions',
            render: (_, s) => (
              <Flex gap={8}>
                <Button size="small" onClick={() => setEditing(s)} aria-label={`Edit ${hostOf(s.url)}`}>
                  Edit
                </Button>
                <Popconfirm
                  title="Delete this subscription?"
                  description="Its queued deliveries are dropped."
                  okText="Delete"
                  cancelText="Keep"
                  onConfirm={async () => {
                    try {
                      await notificationsApi.remove(s.id);
                      message.success('Deleted');
                      setN((x) => x + 1);
                    } catch (err) {
                      message.error((err as Error).message);
                    }
                  }}
                >
                  <Button size="small" danger aria-label={`Delete ${hostOf(s.url)}`}>
                    Delete
                  </Button>
                </Popconfirm>
              </Flex>
            ),
          },
        ]}
      />
      {editing && (
        <SubscriptionForm
          editing={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            setN((x) => x + 1);
          }}
        />
      )}
    </section>
  );
}

/** Only the host: a Slack incoming-webhook URL is itself a credential. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
