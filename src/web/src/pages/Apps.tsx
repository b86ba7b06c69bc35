/** Applications: list, create, edit, delete (owners), and "Schedule deployment" per app (deployers). */
import { useState } from 'react';
import { Alert, App as AntApp, Button, Flex, Popconfirm, Space, Table, Tag, Typography, type TableColumnsType } from 'antd';
import { api, can, type App } from '../api.ts';
import { navigate } from '../router.ts';
import { useSession } from '../session.tsx';
import { AppFormModal } from '../components/AppForm.tsx';
import { ScheduleModal } from '../components/LazyScheduleModal.tsx';
import { useApps } from '../components/useApps.ts';

function targetSummary(a: App): string {
  const t = a.target;
  switch (t.type) {
    case 'webhook':
      return t.url;
    case 'command':
      return [t.command, ...(t.args ?? [])].join(' ');
    case 'ecs':
      return `${t.region} / ${t.cluster} / ${t.service}${t.image ? ` → ${t.image}` : ''}`;
    case 'digitalocean':
      return `app ${t.app_id}`;
    case 'github_actions':
      return `${t.repository} · ${t.workflow} @ ${t.ref}`;
    case 'kubernetes':
      return `${t.kind ?? 'Deployment'} ${t.namespace}/${t.name}${t.image ? ` → ${t.image}` : ' (restart)'}`;
    default:
      return '';
  }
}

export default function AppsPage() {
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const { apps, loading, error, reload } = useApps();
  const [editing, setEditing] = useState<App | 'new' | null>(null);
  const [scheduling, setScheduling] = useState<App | null>(null);
  const mayManage = can(me, 'manage');
  const maySchedule = can(me, 'schedule');

  const columns: TableColumnsType<App> = [
    { title: 'Name', dataIndex: 'name', key: 'name' },
    { title: 'Target', key: 'type', render: (_, a) => <Tag>{a.target.type}</Tag> },
    {
      title: 'Where',
      key: 'where',
      render: (_, a) => (
        <Typography.Text ellipsis={{ tooltip: targetSummary(a) }} style={{ maxWidth: 320 }}>
          {targetSummary(a)}
        </Typography.Text>
      ),
    },
    { title: 'Retry', key: 'retry', render: (_, a) => (a.retry ? `${a.retry.max_attempts} × ${a.retry.backoff_seconds}s` : '—') },
    {
      title: 'Approvals',
      key: 'approval',
      render: (_, a) =>
        a.approval ? `${a.approval.required} from ${(a.approval.from_roles ?? ['owner', 'deployer']).map((r) => `${r}s`).join(' or ')}` : '—',
    },
  ];
  if (maySchedule || mayManage) {
    columns.push({
      title: 'Actions',
      key: 'actions',
      render: (_, a) => (
        <Space size={4} wrap>
          {maySchedule && (
            <Button size="small" type="primary" onClick={() => setScheduling(a)} aria-label={`Schedule deployment of ${a.name}`}>
              Schedule deployment
            </Button>
          )}
          {mayManage && (
            <Button size="small" onClick={() => setEditing(a)} aria-label={`Edit ${a.name}`}>
              Edit
            </Button>
          )}
          {mayManage && (
            <Popconfirm
              title={`Delete ${a.name}?`}
              okText="Delete"
              cancelText="Keep"
              onConfirm={async () => {
                try {
                  await api.deleteApp(a.id);
                  message.success(`Deleted ${a.name}`);
                  reload();
                } catch (err) {
                  message.error((err as Error).message);
                }
              }}
            >
              <Button size="small" danger aria-label={`Delete ${a.name}`}>
                Delete
              </Button>
            </Popconfirm>
          )}
        </Space>
      ),
    });
  }

  return (
    <section aria-labelledby="apps-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="apps-title" style={{ margin: 0 }}>
          Applications
        </Typography.Title>
        {mayManage && (
          <Button type="primary" onClick={() => setEditing('new')}>
            New application
          </Button>
        )}
      </Flex>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<App>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={apps}
        loading={loading}
        pagination={{ pageSize: 50, hideOnSinglePage: true }}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No applications yet' }}
      />
      {editing && (
        <AppFormModal
          app={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            reload();
          }}
        />
      )}
      {scheduling && (
        <ScheduleModal
          open
          target={{ kind: 'create', appId: scheduling.id }}
          apps={apps}
          onClose={() => setScheduling(null)}
          onDone={(sd) => {
            setScheduling(null);
            navigate(`/deployments/${sd.id}`);
          }}
        />
      )}
    </section>
  );
}
