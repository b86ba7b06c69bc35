/**
 * The deployments table: filters by state, app and approval status, cursor pagination (the server
 * pages; the browser never holds more than one page, so 1,000+ deployments stay fast), live state
 * from /v1/events (a row needing approval is read again on its events, so an approval given
 * elsewhere shows at once), the count of pending approvals as a badge, cancel and reschedule from
 * the row.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Alert, App as AntApp, Badge, Button, Flex, Form, Popconfirm, Select, Space, Table, Tag, Typography, type TableColumnsType } from 'antd';
import { ApiError, DEPLOYMENT_STATES, api, can, type ApprovalStatus, type Rollback, type ScheduledDeployment } from '../api.ts';
import { ApprovalTag } from '../components/ApprovalTag.tsx';
import { useDeploymentEvents, type DeploymentChange } from '../events.ts';
import { formatInstant, formatLocal, viewerZone } from '../format.ts';
import { linkClick } from '../router.ts';
import { useSession } from '../session.tsx';
import { ScheduleModal, type ScheduleTarget } from '../components/LazyScheduleModal.tsx';
import { StateTag } from '../components/StateTag.tsx';
import { useApps } from '../components/useApps.ts';

const PAGE_SIZES = [20, 50, 100, 500];
/** The badge counts pending approvals up to this many ("500+" beyond). */
const PENDING_COUNT_MAX = 500;

/** The rollback state each rollback_* timeline event announces. */
const ROLLBACK_EVENT_STATE: Record<string, Rollback['state']> = {
  rollback_started: 'pending', rollback_running: 'running', rollback_succeeded: 'succeeded',
  rollback_failed: 'failed', rollback_not_possible: 'not_possible',
};

export function applyChange(d: ScheduledDeployment, e: DeploymentChange): ScheduledDeployment {
  let next = d;
  if (d.id === e.id && e.state.startsWith('rollback_')) {
    // A rollback's progress: the deployment keeps its own (final) state.
    const state = ROLLBACK_EVENT_STATE[e.state];
    if (state) next = { ...d, rollback: { ref: null, started_at: null, finished_at: null, ...(d.rollback ?? {}), state } };
  } else if (d.id === e.id) {
    next = { ...d, state: e.state as ScheduledDeployment['state'], error: e.error ?? d.error };
    if (e.state === 'running' && !d.started_at) next.started_at = e.at;
    if (['succeeded', 'failed', 'canceled', 'skipped', 'missed'].includes(e.state)) next.finished_at = e.at;
  }
  if (d.dependency) {
    const dep = applyChange(d.dependency, e);
    if (dep !== d.dependency) next = { ...next, dependency: dep };
  }
  return next;
}

export default function DeploymentsPage() {
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const { apps } = useApps();
  const [stateFilter, setStateFilter] = useState<string | undefined>();
  const [appFilter, setAppFilter] = useState<string | undefined>();
  const [approvalFilter, setApprovalFilter] = useState<ApprovalStatus | undefined>();
  const [pending, setPending] = useState<{ n: number; more: boolean } | null>(null);
  const [pageSize, setPageSize] = useState(50);
  // cursors[i] is the cursor that fetches page i (page 0: null).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState(0);
  const [rows, setRows] = useState<ScheduledDeployment[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [modal, setModal] = useState<ScheduleTarget | null>(null);
  const [reloadN, setReloadN] = useState(0);
  const mayWrite = can(me, 'schedule');
  const zone = viewerZone();

  useEffect(() => {
    let live = true;
    setLoading(true);
    api
      .listDeployments({ state: stateFilter, app: appFilter, approval: approvalFilter, cursor: cursors[page], limit: pageSize })
      .then((res) => {
        if (!live) return;
        setRows(res.result);
        setNextCursor(res.next_cursor);
        setError(null);
      })
      .catch((e: Error) => live && setError(e.message))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [stateFilter, appFilter, approvalFilter, pageSize, cursors, page, reloadN]);

  // The pending-approvals badge: counted by the server's filter, again after every reload.
  useEffect(() => {
    let live = true;
    api
      .listDeployments({ approval: 'pending', limit: PENDING_COUNT_MAX })
      .then((res) => live && setPending({ n: res.result.length, more: res.next_cursor !== null }))
      .catch(() => live && setPending(null));
    return () => {
      live = false;
    };
  }, [reloadN]);

  const reload = useCallback(() => setReloadN((n) => n + 1), []);
  const resetPaging = () => {
    setCursors([null]);
    setPage(0);
  };

  // Live updates: patch rows in place; a deployment we do not show yet means a reload.
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  useDeploymentEvents((e) => {
    const holders = rowsRef.current.filter((r) => r.id === e.id || r.dependency?.id === e.id);
    const known = holders.length > 0;
    if (known) setRows((rs) => rs.map((r) => applyChange(r, e)));
    // An approval or rejection is an event that does not change the state: read such rows again.
    for (const r of holders) {
      if (!r.approval && !r.dependency?.approval) continue;
      api.getDeployment(r.id).then(({ result: { events: _e, log: _l, ...fresh } }) => {
        setRows((rs) => rs.map((x) => (x.id === fresh.id ? fresh : x)));
      }, () => {});
    }
    const filteredOut = stateFilter !== undefined || approvalFilter !== undefined;
    if (known && !filteredOut) setReloadBadge();
    if ((!known && page === 0) || filteredOut) {
      if (reloadTimer.current) clearTimeout(reloadTimer.current);
      reloadTimer.current = setTimeout(reload, 400);
    }
  });
  const badgeTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  function setReloadBadge() {
    if (badgeTimer.current) clearTimeout(badgeTimer.current);
    badgeTimer.current = setTimeout(() => {
      api
        .listDeployments({ approval: 'pending', limit: PENDING_COUNT_MAX })
        .then((res) => setPending({ n: res.result.length, more: res.next_cursor !== null }), () => {});
    }, 400);
  }
  useEffect(() => () => {
    if (reloadTimer.current) clearTimeout(reloadTimer.current);
    if (badgeTimer.current) clearTimeout(badgeTimer.current);
  }, []);

  async function cancel(d: ScheduledDeployment) {
    try {
      const res = await api.cancel(d.id);
      setRows((rs) => rs.map((r) => (r.id === d.id ? { ...r, ...res.result } : r)));
      message.success(`Canceled ${d.app.name}`);
      reload();
    } catch (err) {
      message.error(err instanceof ApiError ? err.message : String(err));
    }
  }

  const columns = useMemo<TableColumnsType<ScheduledDeployment>>(
    () => [
      {
        title: 'Application',
        key: 'app',
        render: (_, d) => (
          <a href={`/deployments/${d.id}`} onClick={linkClick(`/deployments/${d.id}`)}>
            {d.app.name}
          </a>
        ),
      },
      {
        title: 'Scheduled (local)',
        key: 'local',
        render: (_, d) => (
          <span>
            {formatLocal(d.local)}{' '}
            <Typography.Text type="secondary">
              {d.timezone} (UTC{d.utc_offset})
            </Typography.Text>
          </span>
        ),
      },
      { title: `Your time (${zone})`, key: 'viewer', render: (_, d) => formatInstant(d.run_at, zone, true) },
      {
        title: 'State', key: 'state',
        render: (_, d) => (
          <Space size={4}>
            <StateTag state={d.state} />
            {d.rollback && (
              <Tag color={d.rollback.state === 'succeeded' ? 'purple' : d.rollback.state === 'failed' || d.rollback.state === 'not_possible' ? 'red' : 'orange'}>
                {d.rollback.state === 'succeeded' ? 'rolled back' : d.rollback.state === 'pending' || d.rollback.state === 'running' ? 'rolling back' : 'rollback failed'}
              </Tag>
            )}
          </Space>
        ),
      },
      {
        title: 'Dependency',
        key: 'dependency',
        render: (_, d) =>
          d.dependency ? (
            <Space size={4} wrap>
              <a href={`/deployments/${d.dependency.id}`} onClick={linkClick(`/deployments/${d.dependency.id}`)}>
                {d.dependency.app.name}
              </a>
              <StateTag state={d.dependency.state} />
            </Space>
          ) : (
            <Typography.Text type="secondary">—</Typography.Text>
          ),
      },
      {
        title: 'Approval',
        key: 'approval',
        render: (_, d) => (d.approval ? <ApprovalTag approval={d.approval} /> : <Typography.Text type="secondary">—</Typography.Text>),
      },
      {
        title: 'Actions',
        key: 'actions',
        render: (_, d) =>
          mayWrite && (d.state === 'scheduled' || d.state === 'held') ? (
            <Space size={4} wrap>
              <Button size="small" onClick={() => setModal({ kind: 'reschedule', deployment: d })} aria-label={`Reschedule ${d.app.name}`}>
                Reschedule
              </Button>
              <Popconfirm
                title="Cancel this deployment?"
                description={d.dependency ? 'Its pending dependency is canceled too.' : undefined}
                okText="Cancel deployment"
                cancelText="Keep"
                onConfirm={() => cancel(d)}
              >
                <Button size="small" danger aria-label={`Cancel ${d.app.name}`}>
                  Cancel
                </Button>
              </Popconfirm>
            </Space>
          ) : null,
      },
    ],
    // `cancel` only uses stable setters and the message API.
    [mayWrite, zone],
  );

  return (
    <section aria-labelledby="deployments-title">
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 16 }}>
        <Typography.Title level={2} id="deployments-title" style={{ margin: 0 }}>
          Deployments
        </Typography.Title>
        <Space wrap>
          <Badge count={pending ? (pending.more ? `${pending.n}+` : pending.n) : 0} overflowCount={PENDING_COUNT_MAX} data-testid="pending-approvals-badge">
            <Button
              aria-label={`Pending approvals: ${pending?.n ?? 0}${pending?.more ? '+' : ''}`}
              onClick={() => {
                setApprovalFilter('pending');
                resetPaging();
              }}
            >
              Pending approvals
            </Button>
          </Badge>
          {mayWrite && (
            <Button type="primary" onClick={() => setModal({ kind: 'create' })}>
              Schedule deployment
            </Button>
          )}
        </Space>
      </Flex>
      <Form layout="inline" name="filters" style={{ marginBottom: 16, rowGap: 8 }}>
        <Form.Item label="Filter by state" name="state">
          <Select
            allowClear
            placeholder="Any state"
            style={{ width: 160 }}
            options={DEPLOYMENT_STATES.map((s) => ({ value: s, label: s }))}
            onChange={(v?: string) => {
              setStateFilter(v);
              resetPaging();
            }}
          />
        </Form.Item>
        <Form.Item label="Filter by approval">
          <Select
            allowClear
            aria-label="Filter by approval"
            placeholder="Any approval"
            style={{ width: 160 }}
            value={approvalFilter}
            options={(['pending', 'approved', 'rejected'] as const).map((s) => ({ value: s, label: s }))}
            onChange={(v?: ApprovalStatus) => {
              setApprovalFilter(v);
              resetPaging();
            }}
          />
        </Form.Item>
        <Form.Item label="Filter by app" name="app">
          <Select
            allowClear
            showSearch={{ optionFilterProp: 'label' }}
            placeholder="Any application"
            style={{ width: 200 }}
            options={apps.map((a) => ({ value: a.id, label: a.name }))}
            onChange={(v?: string) => {
              setAppFilter(v);
              resetPaging();
            }}
          />
        </Form.Item>
      </Form>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<ScheduledDeployment>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={rows}
        loading={loading}
        pagination={false}
        // Big pages render only the rows in view (a virtual table); small ones stay plain tables.
        virtual={pageSize > 100}
        scroll={pageSize > 100 ? { x: 1100, y: 600 } : { x: 'max-content' }}
        locale={{ emptyText: 'No deployments' }}
      />
      <Flex justify="flex-end" align="center" gap={8} wrap style={{ marginTop: 16 }}>
        <Typography.Text type="secondary">Page {page + 1}</Typography.Text>
        <Button disabled={page === 0} onClick={() => setPage((p) => p - 1)}>
          Previous page
        </Button>
        <Button
          disabled={!nextCursor}
          onClick={() => {
            setCursors((cs) => [...cs.slice(0, page + 1), nextCursor]);
            setPage((p) => p + 1);
          }}
        >
          Next page
        </Button>
        <Select
          aria-label="Rows per page"
          value={pageSize}
          style={{ width: 120 }}
          options={PAGE_SIZES.map((n) => ({ value: n, label: `${n} / page` }))}
          onChange={(n: number) => {
            setPageSize(n);
            resetPaging();
          }}
        />
      </Flex>
      {modal && (
        <ScheduleModal
          open
          target={modal}
          apps={apps}
          onClose={() => setModal(null)}
          onDone={() => {
            setModal(null);
            reload();
          }}
        />
      )}
    </section>
  );
}
