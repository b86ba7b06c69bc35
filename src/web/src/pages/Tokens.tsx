/**
 * Your API tokens for CI: create one (its secret is shown once, here), see when each was last
 * used, revoke one. A token acts as you with at most the role it was given.
 */
import { useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Flex, Form, Input, InputNumber, Modal, Popconfirm, Select, Table, Tag, Typography } from 'antd';
import { ApiError, accountsApi, listAll, type ApiToken, type Role } from '../api.ts';
import { formatInstant } from '../format.ts';
import { useSession } from '../session.tsx';

const RANK: Record<Role, number> = { viewer: 0, deployer: 1, owner: 2 };

interface NewToken {
  name: string;
  role: Role;
  expires_in_days: number;
}

function CreateToken({ myRole, onClose, onCreated }: { myRole: Role; onClose(): void; onCreated(t: ApiToken & { token: string }): void }) {
  const [form] = Form.useForm<NewToken>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const roles = (['owner', 'deployer', 'viewer'] as Role[]).filter((r) => RANK[r] <= RANK[myRole]).map((r) => ({ value: r, label: r }));

  async function onFinish(v: NewToken) {
    setBusy(true);
    setError(null);
    try {
      onCreated(await accountsApi.createToken({ name: v.name.trim(), role: v.role, expires_in_days: v.expires_in_days }));
    } catch (err) {
      if (err instanceof ApiError && err.field && ['name', 'role', 'expires_in_days'].includes(err.field)) form.setFields([{ name: err.field as keyof NewToken, errors: [err.message] }]);
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal open title="New API token" okText="Create" onOk={() => form.submit()} onCancel={onClose} confirmLoading={busy} destroyOnHidden>
      <Form<NewToken> form={form} name="token" layout="vertical" initialValues={{ role: myRole, expires_in_days: 90 }} onFinish={onFinish}>
        <Form.Item label="Name" name="name" extra="What uses it, e.g. the deploy pipeline." rules={[{ required: true, whitespace: true, message: 'Enter a name' }]}>
          <Input autoFocus maxLength={100} />
        </Form.Item>
        <Form.Item label="Role" name="role" extra="At most your own role.">
          <Select options={roles} />
        </Form.Item>
        <Form.Item label="Expires in (days)" name="expires_in_days" rules={[{ required: true, message: 'Enter a number of days' }]}>
          <InputNumber min={1} max={365} precision={0} />
        </Form.Item>
        {error && <Alert type="error" showIcon title={error} role="alert" />}
      </Form>
    </Modal>
  );
}

export default function TokensPage() {
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const [rows, setRows] = useState<ApiToken[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<(ApiToken & { token: string }) | null>(null);
  const [n, setN] = useState(0);

  useEffect(() => {
    setLoading(true);
    listAll((c) => accountsApi.listTokens(c))
      .then((r) => (setRows(r), setError(null)))
      .catch((e: Error) => setError(e.message))
      .finally(() => setLoading(false));
  }, [n]);

  return (
    <section aria-labelledby="tokens-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="tokens-title" style={{ margin: 0 }}>
          API tokens
        </Typography.Title>
        <Button type="primary" onClick={() => setCreating(true)}>
          New API token
        </Button>
      </Flex>
      <Typography.Paragraph type="secondary">
        For CI: <Typography.Text code>SHIPCLOCK_URL=… SHIPCLOCK_TOKEN=shc_… shipclock watch ID</Typography.Text>, or{' '}
        <Typography.Text code>Authorization: Bearer shc_…</Typography.Text> on the API.
      </Typography.Paragraph>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<ApiToken>
        rowKey="id"
        size="middle"
        loading={loading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No API tokens' }}
        columns={[
          { title: 'Name', dataIndex: 'name', key: 'name' },
          { title: 'Role', key: 'role', render: (_, t) => <Tag>{t.role}</Tag> },
          {
            title: 'Expires',
            key: 'expires',
            render: (_, t) => (Date.parse(t.expires_at) <= Date.now() ? <Tag color="red">expired</Tag> : formatInstant(t.expires_at)),
          },
          { title: 'Last used', key: 'used', render: (_, t) => (t.last_used_at ? formatInstant(t.last_used_at) : 'never') },
          { title: 'Created', key: 'created', render: (_, t) => formatInstant(t.created_at) },
          {
            title: 'Actions',
            key: 'actions',
            render: (_, t) => (
              <Popconfirm
                title={`Revoke ${t.name}?`}
                description="Whatever uses it is refused from now on."
                okText="Revoke"
                cancelText="Keep"
                onConfirm={async () => {
                  try {
                    await accountsApi.revokeToken(t.id);
                    message.success(`Revoked ${t.name}`);
                    setN((x) => x + 1);
                  } catch (err) {
                    message.error((err as Error).message);
                  }
                }}
              >
                <Button size="small" danger aria-label={`Revoke ${t.name}`}>
                  Revoke
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      {creating && (
        <CreateToken
          myRole={me!.role}
          onClose={() => setCreating(false)}
          onCreated={(t) => {
            setCreating(false);
            setShown(t);
            setN((x) => x + 1);
          }}
        />
      )}
      {shown && (
        <Modal open title={`API token ${shown.name}`} okText="Done" onOk={() => setShown(null)} onCancel={() => setShown(null)} cancelButtonProps={{ style: { display: 'none' } }}>
          <Alert type="warning" showIcon style={{ marginBottom: 16 }} title="Copy it now: it is shown only this once." />
          <Typography.Paragraph copyable={{ text: shown.token }} code aria-label="The new API token" style={{ wordBreak: 'break-all' }}>
            {shown.token}
          </Typography.Paragraph>
          <Typography.Paragraph type="secondary">
            Role {shown.role}; expires {formatInstant(shown.expires_at)}.
          </Typography.Paragraph>
        </Modal>
      )}
    </section>
  );
}
