/** The team's members (owners): change a role, remove someone, add someone. */
import { useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Flex, Form, Input, Modal, Popconfirm, Select, Space, Table, Tag, Typography } from 'antd';
import { ApiError, accountsApi, listAll, type Member, type Role } from '../api.ts';
import { formatInstant } from '../format.ts';
import { useSession } from '../session.tsx';

const ROLES: Array<{ value: Role; label: string }> = [
  { value: 'owner', label: 'owner' },
  { value: 'deployer', label: 'deployer' },
  { value: 'viewer', label: 'viewer' },
];

interface NewMember {
  email: string;
  password: string;
  role: Role;
}

function AddMember({ teamId, onClose, onSaved }: { teamId: string; onClose(): void; onSaved(email: string): void }) {
  const [form] = Form.useForm<NewMember>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onFinish(v: NewMember) {
    setBusy(true);
    setError(null);
    try {
      await accountsApi.addMember(teamId, { email: v.email.trim(), password: v.password, role: v.role });
      onSaved(v.email.trim());
    } catch (err) {
      if (err instanceof ApiError && err.field && ['email', 'password', 'role'].includes(err.field)) form.setFields([{ name: err.field as keyof NewMember, errors: [err.message] }]);
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal open title="Add a member" okText="Add" onOk={() => form.submit()} onCancel={onClose} confirmLoading={busy} destroyOnHidden>
      <Form<NewMember> form={form} name="member" layout="vertical" initialValues={{ role: 'deployer' }} onFinish={onFinish}>
        <Form.Item label="Email" name="email" rules={[{ required: true, message: 'Enter the email' }]}>
          <Input type="email" autoComplete="off" autoFocus />
        </Form.Item>
        <Form.Item label="Initial password" name="password" extra="Give it to them; they can change it under Password." rules={[{ required: true, message: 'Enter a password' }, { min: 8, message: 'At least 8 characters' }]}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item label="Role" name="role">
          <Select options={ROLES} />
        </Form.Item>
        {error && <Alert type="error" showIcon title={error} role="alert" />}
      </Form>
    </Modal>
  );
}

export default function MembersPage() {
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const [rows, setRows] = useState<Member[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [n, setN] = useState(0);
  const teamId = me!.team.id;

  useEffect(() => {
    setLoading(true);
    listAll((c) => accountsApi.listMembers(teamId, c))
      .then((r) => (setRows(r), setError(null)))
      .catch((e: Error) => setError(e.message))
      .finally(() => setLoading(false));
  }, [n, teamId]);

  async function changeRole(m: Member, role: Role) {
    try {
      await accountsApi.updateMember(teamId, m.id, role);
      message.success(`${m.email} is now ${role}`);
    } catch (err) {
      message.error((err as Error).message);
    }
    setN((x) => x + 1);
  }

  return (
    <section aria-labelledby="members-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="members-title" style={{ margin: 0 }}>
          Members of {me!.team.name}
        </Typography.Title>
        <Button type="primary" onClick={() => setAdding(true)}>
          Add member
        </Button>
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<Member>
        rowKey="id"
        size="middle"
        loading={loading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No members' }}
        columns={[
          {
            title: 'Email',
            key: 'email',
            render: (_, m) => (
              <Space size={4} wrap>
                <span>{m.email}</span>
                {m.id === me!.id && <Tag>you</Tag>}
                {m.sso && <Tag color="blue">SSO</Tag>}
                {m.admin && <Tag color="gold">admin</Tag>}
              </Space>
            ),
          },
          {
            title: 'Role',
            key: 'role',
            render: (_, m) => (
              <Select<Role> aria-label={`Role of ${m.email}`} size="small" value={m.role} options={ROLES} style={{ width: 120 }} onChange={(role) => changeRole(m, role)} />
            ),
          },
          { title: 'Added', key: 'created', render: (_, m) => formatInstant(m.created_at) },
          {
            title: 'Actions',
            key: 'actions',
            render: (_, m) => (
              <Popconfirm
                title={`Remove ${m.email}?`}
                description="Their sessions and API tokens stop working; what they scheduled stays."
                okText="Remove"
                cancelText="Keep"
                onConfirm={async () => {
                  try {
                    await accountsApi.removeMember(teamId, m.id);
                    message.success(`Removed ${m.email}`);
                    setN((x) => x + 1);
                  } catch (err) {
                    message.error((err as Error).message);
                  }
                }}
              >
                <Button size="small" danger aria-label={`Remove ${m.email}`}>
                  Remove
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      {adding && (
        <AddMember
          teamId={teamId}
          onClose={() => setAdding(false)}
          onSaved={(email) => {
            setAdding(false);
            message.success(`Added ${email}`);
            setN((x) => x + 1);
          }}
        />
      )}
    </section>
  );
}
