/** Stored cloud credentials (owners only). Secrets are write-only: entered here, never shown again. */
import { useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Flex, Form, Input, Modal, Popconfirm, Select, Table, Tag, Typography } from 'antd';
import { ApiError, api, listAll, type Credential } from '../api.ts';
import { formatInstant } from '../format.ts';

interface Values {
  name: string;
  provider: 'aws' | 'digitalocean' | 'github' | 'kubernetes';
  /** kubernetes: a kubeconfig document, or a server URL with a token. */
  form?: 'kubeconfig' | 'token';
  kubeconfig?: string;
  server?: string;
  ca_certificate?: string;
  access_key_id?: string;
  api_url?: string;
  secret_access_key?: string;
  session_token?: string;
  token?: string;
}

function NewCredential({ onClose, onSaved }: { onClose(): void; onSaved(): void }) {
  const [form] = Form.useForm<Values>();
  const provider = Form.useWatch('provider', form) ?? 'aws';
  const kubeForm = Form.useWatch('form', form) ?? 'kubeconfig';
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onFinish(v: Values) {
    const body: Record<string, string> =
      v.provider === 'aws'
        ? { name: v.name, provider: 'aws', access_key_id: v.access_key_id!, secret_access_key: v.secret_access_key!, ...(v.session_token ? { session_token: v.session_token } : {}) }
        : v.provider === 'github'
          ? { name: v.name, provider: 'github', token: v.token!, ...(v.api_url?.trim() ? { api_url: v.api_url.trim() } : {}) }
        : v.provider === 'kubernetes'
          ? (v.form ?? 'kubeconfig') === 'kubeconfig'
            ? { name: v.name, provider: 'kubernetes', kubeconfig: v.kubeconfig! }
            : { name: v.name, provider: 'kubernetes', server: v.server!, token: v.token!, ...(v.ca_certificate ? { ca_certificate: v.ca_certificate } : {}) }
          : { name: v.name, provider: 'digitalocean', token: v.token! };
    setBusy(true);
    try {
      await api.createCredential(body);
      onSaved();
    } catch (err) {
      if (err instanceof ApiError && err.field && err.field in form.getFieldsValue()) form.setFields([{ name: err.field as keyof Values, errors: [err.message] }]);
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const req = (what: string) => [{ required: true, message: `Enter the ${what}` }];
  return (
    <Modal open title="Add credentials" okText="Add" onOk={() => form.submit()} onCancel={onClose} confirmLoading={busy} destroyOnHidden>
      <Form<Values>
        form={form}
        name="credential"
        layout="vertical"
        initialValues={{ provider: 'aws' }}
        onFinish={onFinish}
        onValuesChange={(changed) => {
          setError(null);
          // An error the API put on a field goes once that field is edited.
          form.setFields(Object.keys(changed).map((k) => ({ name: k as keyof Values, errors: [] })));
        }}
      >
        <Form.Item label="Name" name="name" rules={req('name')}>
          <Input autoFocus />
        </Form.Item>
        <Form.Item label="Provider" name="provider">
          <Select options={[{ value: 'aws', label: 'AWS' }, { value: 'digitalocean', label: 'DigitalOcean' }, { value: 'github', label: 'GitHub' }, { value: 'kubernetes', label: 'Kubernetes' }]} />
        </Form.Item>
        {provider === 'kubernetes' ? (
          <>
            <Form.Item label="Form" name="form" initialValue="kubeconfig">
              <Select options={[{ value: 'kubeconfig', label: 'kubeconfig document' }, { value: 'token', label: 'API server URL and token' }]} />
            </Form.Item>
            {kubeForm === 'kubeconfig' ? (
              <Form.Item
                label="kubeconfig"
                name="kubeconfig"
                rules={req('kubeconfig')}
                extra="Its current-context is used. Inline credentials only (token or client-certificate-data/client-key-data); exec plugins and file paths are refused."
              >
                <Input.TextArea rows={8} spellCheck={false} autoComplete="off" style={{ fontFamily: 'monospace' }} />
              </Form.Item>
            ) : (
              <>
                <Form.Item label="API server URL" name="server" rules={req('API server URL')}>
                  <Input placeholder="https://k8s.example.com:6443" autoComplete="off" />
                </Form.Item>
                <Form.Item label="Token" name="token" rules={req('bearer token')} extra="e.g. a ServiceAccount token allowed to get and patch the workloads.">
                  <Input.Password autoComplete="new-password" />
                </Form.Item>
                <Form.Item label="CA certificate" name="ca_certificate" extra="PEM; leave empty to trust the system CAs.">
                  <Input.TextArea rows={4} spellCheck={false} style={{ fontFamily: 'monospace' }} />
                </Form.Item>
              </>
            )}
          </>
        ) : provider === 'aws' ? (
          <>
            <Form.Item label="Access key ID" name="access_key_id" rules={req('access key id')}>
              <Input autoComplete="off" />
            </Form.Item>
            <Form.Item label="Secret access key" name="secret_access_key" rules={req('secret access key')}>
              <Input.Password autoComplete="new-password" />
            </Form.Item>
            <Form.Item label="Session token" name="session_token">
              <Input.Password autoComplete="new-password" />
            </Form.Item>
          </>
        ) : provider === 'github' ? (
          <>
            <Form.Item label="Token" name="token" rules={req('GitHub token')} extra="A token that may dispatch workflows (actions: write) and read the workflow file (contents: read).">
              <Input.Password autoComplete="new-password" />
            </Form.Item>
            <Form.Item label="API URL" name="api_url" extra="GitHub Enterprise Server only, e.g. https://ghe.example.com/api/v3. Leave blank for github.com.">
              <Input placeholder="https://api.github.com" autoComplete="off" />
            </Form.Item>
          </>
        ) : (
          <Form.Item label="Token" name="token" rules={req('API token')}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
        )}
        <Typography.Paragraph type="secondary">Stored encrypted; never shown again.</Typography.Paragraph>
        {error && <Alert type="error" showIcon title={error} role="alert" />}
      </Form>
    </Modal>
  );
}

export default function CredentialsPage() {
  const { message } = AntApp.useApp();
  const [rows, setRows] = useState<Credential[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [n, setN] = useState(0);

  useEffect(() => {
    setLoading(true);
    listAll((c) => api.listCredentials(c))
      .then((r) => (setRows(r), setError(null)))
      .catch((e: Error) => setError(e.message))
      .finally(() => setLoading(false));
  }, [n]);

  return (
    <section aria-labelledby="credentials-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="credentials-title" style={{ margin: 0 }}>
          Credentials
        </Typography.Title>
        <Button type="primary" onClick={() => setAdding(true)}>
          Add credentials
        </Button>
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<Credential>
        rowKey="id"
        size="middle"
        loading={loading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No stored credentials' }}
        columns={[
          { title: 'Name', dataIndex: 'name', key: 'name' },
          { title: 'Provider', key: 'provider', render: (_, c) => <>{<Tag>{c.provider}</Tag>}{c.api_url && <Typography.Text type="secondary">{c.api_url}</Typography.Text>}</> },
          { title: 'Server', key: 'server', render: (_, c) => (c.server ? `${c.server}${c.context ? ` (${c.context})` : ''}` : '—') },
          { title: 'Added', key: 'created', render: (_, c) => (c.created_at ? formatInstant(c.created_at) : '—') },
          {
            title: 'Actions',
            key: 'actions',
            render: (_, c) => (
              <Popconfirm
                title={`Delete ${c.name}?`}
                description="Apps using these credentials will fail to deploy."
                okText="Delete"
                cancelText="Keep"
                onConfirm={async () => {
                  try {
                    await api.deleteCredential(c.id);
                    message.success(`Deleted ${c.name}`);
                    setN((x) => x + 1);
                  } catch (err) {
                    message.error((err as Error).message);
                  }
                }}
              >
                <Button size="small" danger aria-label={`Delete ${c.name}`}>
                  Delete
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      {adding && (
        <NewCredential
          onClose={() => setAdding(false)}
          onSaved={() => {
            setAdding(false);
            message.success('Credentials stored');
            setN((x) => x + 1);
          }}
        />
      )}
    </section>
  );
}
