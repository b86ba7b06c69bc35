/**
 * Create or edit an application: a form per target type (webhook, command, ecs, digitalocean,
 * github_actions, kubernetes),
 * with a picker of the team's stored credentials for the cloud targets. Secrets are write-only:
 * the API never returns them, so on edit an empty secret field means "keep the stored one".
 */
import { useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Form, Input, InputNumber, Modal, Select, Space, Switch } from 'antd';
import { ApiError, api, listAll, type App, type Credential, type Target, type TargetType } from '../api.ts';

interface FormValues {
  name: string;
  type: TargetType;
  url?: string;
  secret?: string;
  headers?: { name: string; value: string }[];
  command?: string;
  args?: string[];
  cwd?: string;
  region?: string;
  cluster?: string;
  service?: string;
  image?: string;
  container?: string;
  credentials?: string;
  app_id?: string;
  force_build?: boolean;
  repository?: string;
  workflow?: string;
  ref?: string;
  inputs?: { name: string; value: string }[];
  namespace?: string;
  kind?: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  workload?: string;
  poll_interval_seconds?: number | null;
  timeout_seconds?: number | null;
  max_attempts?: number | null;
  backoff_seconds?: number | null;
  on_failure?: 'none' | 'rollback';
  /** Approvals a deployment needs before it fires; empty: none. */
  approval_required?: number | null;
  approval_from_roles?: Array<'owner' | 'deployer'>;
}

const TYPE_OPTIONS: { value: TargetType; label: string }[] = [
  { value: 'webhook', label: 'Webhook (signed HTTP POST)' },
  { value: 'command', label: 'Command (runs on the worker)' },
  { value: 'ecs', label: 'AWS ECS service' },
  { value: 'digitalocean', label: 'DigitalOcean App Platform' },
  { value: 'github_actions', label: 'GitHub Actions workflow' },
  { value: 'kubernetes', label: 'Kubernetes workload' },
];

const KIND_OPTIONS = [
  { value: 'Deployment', label: 'Deployment' },
  { value: 'StatefulSet', label: 'StatefulSet' },
  { value: 'DaemonSet', label: 'DaemonSet' },
];

/** The credential provider a cloud target needs (none for webhook and command). */
const PROVIDER_OF: Partial<Record<TargetType, Credential['provider']>> = { ecs: 'aws', digitalocean: 'digitalocean', github_actions: 'github', kubernetes: 'kubernetes' };
const PROVIDER_LABEL: Record<Credential['provider'], string> = { aws: 'AWS', digitalocean: 'DigitalOcean', github: 'GitHub', kubernetes: 'Kubernetes' };

function toForm(app: App | null): Partial<FormValues> {
  if (!app) return { type: 'webhook', max_attempts: 3, backoff_seconds: 10, approval_required: null, approval_from_roles: ['owner', 'deployer'], on_failure: 'none' };
  const t = app.target as Target & Record<string, unknown>;
  const v: Partial<FormValues> = {
    name: app.name,
    type: t.type,
    max_attempts: app.retry?.max_attempts ?? 3,
    backoff_seconds: app.retry?.backoff_seconds ?? 10,
    on_failure: app.on_failure ?? 'none',
    approval_required: app.approval?.required ?? null,
    approval_from_roles: app.approval?.from_roles ?? ['owner', 'deployer'],
    timeout_seconds: (t.timeout_seconds as number | undefined) ?? null,
  };
  if (t.type === 'webhook') {
    v.url = t.url;
    v.headers = Object.entries(t.headers ?? {}).map(([name, value]) => ({ name, value: String(value) }));
  } else if (t.type === 'command') {
    Object.assign(v, { command: t.command, args: t.args ?? [], cwd: t.cwd });
  } else if (t.type === 'ecs') {
    Object.assign(v, {
      region: t.region, cluster: t.cluster, service: t.service, image: t.image, container: t.container,
      credentials: t.credentials, poll_interval_seconds: t.poll_interval_seconds ?? null,
    });
  } else if (t.type === 'digitalocean') {
    Object.assign(v, { app_id: t.app_id, credentials: t.credentials, force_build: !!t.force_build, poll_interval_seconds: t.poll_interval_seconds ?? null });
  } else if (t.type === 'github_actions') {
    Object.assign(v, {
      repository: t.repository, workflow: t.workflow, ref: t.ref, credentials: t.credentials, poll_interval_seconds: t.poll_interval_seconds ?? null,
      inputs: Object.entries(t.inputs ?? {}).map(([name, value]) => ({ name, value: String(value) })),
    });
  } else if (t.type === 'kubernetes') {
    Object.assign(v, {
      namespace: t.namespace, kind: t.kind ?? 'Deployment', workload: t.name, image: t.image, container: t.container,
      credentials: t.credentials, poll_interval_seconds: t.poll_interval_seconds ?? null,
    });
  }
  return v;
}

function clean<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null && v !== '')) as T;
}

function toTarget(v: FormValues): Target {
  const timeout = v.timeout_seconds ?? undefined;
  switch (v.type) {
    case 'webhook': {
      const headers = Object.fromEntries((v.headers ?? []).filter((h) => h?.name).map((h) => [h.name, h.value ?? '']));
      return clean({ type: 'webhook', url: v.url!, secret: v.secret, headers: Object.keys(headers).length ? headers : undefined, timeout_seconds: timeout });
    }
    case 'command':
      return clean({ type: 'command', command: v.command!, args: v.args?.length ? v.args : undefined, cwd: v.cwd, timeout_seconds: timeout });
    case 'ecs':
      return clean({
        type: 'ecs', region: v.region!, cluster: v.cluster!, service: v.service!, image: v.image, container: v.container,
        credentials: v.credentials!, poll_interval_seconds: v.poll_interval_seconds ?? undefined, timeout_seconds: timeout,
      });
    case 'digitalocean':
      return clean({
        type: 'digitalocean', app_id: v.app_id!, credentials: v.credentials!, force_build: v.force_build || undefined,
        poll_interval_seconds: v.poll_interval_seconds ?? undefined, timeout_seconds: timeout,
      });
    case 'github_actions': {
      const inputs = Object.fromEntries((v.inputs ?? []).filter((i) => i?.name).map((i) => [i.name, i.value ?? '']));
      return clean({
        type: 'github_actions', repository: v.repository!, workflow: v.workflow!, ref: v.ref!, credentials: v.credentials!,
        inputs: Object.keys(inputs).length ? inputs : undefined, poll_interval_seconds: v.poll_interval_seconds ?? undefined, timeout_seconds: timeout,
      });
    }
    case 'kubernetes':
      return clean({
        type: 'kubernetes', credentials: v.credentials!, namespace: v.namespace!, kind: v.kind, name: v.workload!, image: v.image,
        container: v.container, poll_interval_seconds: v.poll_interval_seconds ?? undefined, timeout_seconds: timeout,
      });
  }
}

const FIELD_OF: Record<string, string> = {
  'target.type': 'type', type: 'type', 'approval.required': 'approval_required', 'approval.from_roles': 'approval_from_roles',
  'target.name': 'workload', '/target/name': 'workload',
};
function formField(apiField: string): string {
  return FIELD_OF[apiField] ?? apiField.replace(/^target\.|^\/?target\//, '').replace(/^retry\.|^\/?retry\//, '');
}

export function AppFormModal({ app, onClose, onSaved }: { app: App | null; onClose(): void; onSaved(a: App): void }) {
  const [form] = Form.useForm<FormValues>();
  const { message } = AntApp.useApp();
  const [credentials, setCredentials] = useState<Credential[]>([]);
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const type = Form.useWatch('type', form) ?? app?.target.type ?? 'webhook';

  useEffect(() => {
    listAll((c) => api.listCredentials(c))
      .then(setCredentials)
      .catch(() => setCredentials([]));
  }, []);

  const provider = PROVIDER_OF[type] ?? 'aws';
  const credentialOptions = credentials.filter((c) => c.provider === provider).map((c) => ({ value: c.id, label: `${c.name} (${c.provider})` }));

  async function onFinish(v: FormValues) {
    setFormError(null);
    const body = {
      name: v.name.trim(),
      target: toTarget(v),
      retry: clean({ max_attempts: v.max_attempts ?? undefined, backoff_seconds: v.backoff_seconds ?? undefined }) as App['retry'],
      on_failure: v.on_failure ?? 'none',
      approval: v.approval_required
        ? { required: v.approval_required, from_roles: v.approval_from_roles?.length ? v.approval_from_roles : undefined }
        : null,
    };
    setBusy(true);
    try {
      const saved = app ? await api.updateApp(app.id, body) : await api.createApp(body);
      message.success(app ? `Saved ${saved.name}` : `Created ${saved.name}`);
      onSaved(saved);
    } catch (err) {
      if (err instanceof ApiError && err.field && formField(err.field) in form.getFieldsValue()) {
        form.setFields([{ name: formField(err.field) as keyof FormValues, errors: [err.message] }]);
      } else {
        setFormError((err as Error).message);
      }
    } finally {
      setBusy(false);
    }
  }

  const required = (what: string) => [{ required: true, message: `Enter the ${what}` }];
  const seconds = (label: string, name: keyof FormValues, placeholder?: string) => (
    <Form.Item label={label} name={name}>
      <InputNumber min={1} precision={0} placeholder={placeholder} style={{ width: 160 }} />
    </Form.Item>
  );

  return (
    <Modal
      open
      title={app ? `Edit ${app.name}` : 'New application'}
      okText={app ? 'Save' : 'Create'}
      onOk={() => form.submit()}
      onCancel={onClose}
      confirmLoading={busy}
      destroyOnHidden
      width={640}
    >
      <Form<FormValues> form={form} name="app" layout="vertical" initialValues={toForm(app)} onFinish={onFinish} onValuesChange={() => setFormError(null)}>
        <Form.Item label="Name" name="name" rules={required('application name')}>
          <Input autoFocus />
        </Form.Item>
        <Form.Item label="Target type" name="type" rules={[{ required: true }]}>
          <Select options={TYPE_OPTIONS} />
        </Form.Item>

        {type === 'webhook' && (
          <>
            <Form.Item label="URL" name="url" rules={[...required('URL'), { type: 'url', message: 'Enter an http(s) URL' }]}>
              <Input placeholder="https://deploy.example.com/hook" />
            </Form.Item>
            <Form.Item
              label="Secret"
              name="secret"
              extra={
                app && (app.target as { has_secret?: boolean }).has_secret
                  ? 'A secret is stored (never shown). Leave blank to keep it, or type a new one.'
                  : 'Signs each request: X-Shipclock-Signature: sha256=<HMAC>.'
              }
            >
              <Input.Password autoComplete="new-password" />
            </Form.Item>
            <Form.Item label="Headers">
              <Form.List name="headers">
                {(fields, { add, remove }) => (
                  <>
                    {fields.map((f, i) => (
                      <Space key={f.key} align="baseline" wrap>
                        <Form.Item name={[f.name, 'name']} rules={required('header name')}>
                          <Input placeholder="Name" aria-label={`Header ${i + 1} name`} />
                        </Form.Item>
                        <Form.Item name={[f.name, 'value']}>
                          <Input placeholder="Value" aria-label={`Header ${i + 1} value`} />
                        </Form.Item>
                        <Button onClick={() => remove(f.name)} aria-label={`Remove header ${i + 1}`}>
                          Remove
                        </Button>
                      </Space>
                    ))}
                    <Button onClick={() => add({ name: '', value: '' })}>Add header</Button>
                  </>
                )}
              </Form.List>
            </Form.Item>
            {seconds('Timeout (seconds)', 'timeout_seconds')}
          </>
        )}

        {type === 'command' && (
          <>
            <Form.Item label="Command" name="command" rules={required('command')}>
              <Input placeholder="/usr/local/bin/deploy.sh" />
            </Form.Item>
            <Form.Item label="Arguments" name="args" extra="Type an argument and press Enter; each is passed as is, no shell.">
              <Select mode="tags" open={false} suffixIcon={null} />
            </Form.Item>
            <Form.Item label="Working directory" name="cwd">
              <Input />
            </Form.Item>
            {seconds('Timeout (seconds)', 'timeout_seconds')}
          </>
        )}

        {type === 'ecs' && (
          <>
            <Form.Item label="Region" name="region" rules={required('AWS region')}>
              <Input placeholder="eu-west-1" />
            </Form.Item>
            <Form.Item label="Cluster" name="cluster" rules={required('cluster')}>
              <Input />
            </Form.Item>
            <Form.Item label="Service" name="service" rules={required('service')}>
              <Input />
            </Form.Item>
            <Form.Item label="Image" name="image" extra="Optional: registers a new task-definition revision with this image.">
              <Input placeholder="123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:1.2.3" />
            </Form.Item>
            <Form.Item label="Container" name="container" extra="The container whose image changes (default: the first).">
              <Input />
            </Form.Item>
          </>
        )}

        {type === 'digitalocean' && (
          <>
            <Form.Item label="DigitalOcean app ID" name="app_id" rules={required('App Platform app id')}>
              <Input />
            </Form.Item>
            <Form.Item label="Force build" name="force_build" valuePropName="checked">
              <Switch />
            </Form.Item>
          </>
        )}

        {type === 'github_actions' && (
          <>
            <Form.Item label="Repository" name="repository" rules={required('repository (owner/name)')}>
              <Input placeholder="acme/web" />
            </Form.Item>
            <Form.Item label="Workflow" name="workflow" rules={required('workflow file name or id')} extra="The file in .github/workflows (deploy.yml) or the workflow's numeric id. It needs a workflow_dispatch trigger.">
              <Input placeholder="deploy.yml" />
            </Form.Item>
            <Form.Item label="Ref" name="ref" rules={required('branch or tag')}>
              <Input placeholder="main" />
            </Form.Item>
            <Form.Item label="Inputs" extra="workflow_dispatch inputs the workflow declares. shipclock sets deployment_id, run_at, action and shipclock_id itself when declared.">
              <Form.List name="inputs">
                {(fields, { add, remove }) => (
                  <>
                    {fields.map((f, i) => (
                      <Space key={f.key} align="baseline" wrap>
                        <Form.Item name={[f.name, 'name']} rules={required('input name')}>
                          <Input placeholder="Name" aria-label={`Input ${i + 1} name`} />
                        </Form.Item>
                        <Form.Item name={[f.name, 'value']}>
                          <Input placeholder="Value" aria-label={`Input ${i + 1} value`} />
                        </Form.Item>
                        <Button onClick={() => remove(f.name)} aria-label={`Remove input ${i + 1}`}>
                          Remove
                        </Button>
                      </Space>
                    ))}
                    <Button onClick={() => add({ name: '', value: '' })}>Add input</Button>
                  </>
                )}
              </Form.List>
            </Form.Item>
          </>
        )}

        {type === 'kubernetes' && (
          <>
            <Form.Item label="Namespace" name="namespace" rules={required('namespace')}>
              <Input placeholder="default" />
            </Form.Item>
            <Space wrap size="large" align="start">
              <Form.Item label="Kind" name="kind" initialValue="Deployment">
                <Select options={KIND_OPTIONS} style={{ width: 180 }} />
              </Form.Item>
              <Form.Item label="Workload name" name="workload" rules={required('Deployment, StatefulSet or DaemonSet name')}>
                <Input placeholder="api" style={{ width: 300 }} />
              </Form.Item>
            </Space>
            <Form.Item label="Image" name="image" extra="Optional: sets this container image. Without it, a rollout restart (as kubectl rollout restart).">
              <Input placeholder="registry.example.com/api:1.2.3" />
            </Form.Item>
            <Form.Item label="Container" name="container" extra="The container whose image changes (default: the only one).">
              <Input />
            </Form.Item>
          </>
        )}

        {(type === 'ecs' || type === 'digitalocean' || type === 'github_actions' || type === 'kubernetes') && (
          <>
            <Form.Item
              label="Credentials"
              name="credentials"
              rules={[{ required: true, message: `Choose stored ${PROVIDER_LABEL[provider]} credentials` }]}
              extra={credentialOptions.length ? undefined : 'No stored credentials of this provider yet: add them on the Credentials page.'}
            >
              <Select showSearch={{ optionFilterProp: 'label' }} options={credentialOptions} placeholder="Choose credentials" />
            </Form.Item>
            {seconds('Poll interval (seconds)', 'poll_interval_seconds', '15')}
            {seconds('Timeout (seconds)', 'timeout_seconds', '1800')}
          </>
        )}

        <Space wrap size="large">
          <Form.Item label="Max attempts" name="max_attempts">
            <InputNumber min={1} max={20} precision={0} />
          </Form.Item>
          <Form.Item label="Backoff (seconds)" name="backoff_seconds">
            <InputNumber min={0} precision={0} />
          </Form.Item>
          <Form.Item label="On failure" name="on_failure" tooltip="When a deployment fails after it changed something: restore what ran before, and follow that to its end">
            <Select
              style={{ minWidth: 220 }}
              options={[
                { value: 'none', label: 'Leave it as it is' },
                { value: 'rollback', label: 'Roll back to what ran before' },
              ]}
            />
          </Form.Item>
        </Space>
        <Space wrap size="large" align="start">
          <Form.Item
            label="Approvals required"
            name="approval_required"
            extra="Before a deployment fires, this many people other than the one who scheduled it approve it (1–5). Empty: none."
            style={{ maxWidth: 300 }}
          >
            <InputNumber min={1} max={5} precision={0} placeholder="none" />
          </Form.Item>
          <Form.Item label="Approvals from" name="approval_from_roles" style={{ minWidth: 220 }}>
            <Select
              mode="multiple"
              options={[
                { value: 'owner', label: 'owners' },
                { value: 'deployer', label: 'deployers' },
              ]}
            />
          </Form.Item>
        </Space>
        {formError && <Alert type="error" showIcon title={formError} role="alert" />}
      </Form>
    </Modal>
  );
}
