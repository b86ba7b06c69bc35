/**
 * One deployment: its dependency chain, event timeline, log and the provider's ids (with links
 * to the AWS / DigitalOcean consoles when the target says where). Refreshes on live events.
 */
import { useCallback, useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Card, Descriptions, Empty, Flex, Input, List, Modal, Popconfirm, Space, Spin, Steps, Timeline, Typography } from 'antd';
import { ApiError, api, can, freezesApi, request, type App, type DeploymentDetail, type ScheduledDeployment } from '../api.ts';
import { useDeploymentEvents } from '../events.ts';
import { formatDuration, formatInstant, formatLocal, viewerZone } from '../format.ts';
import { linkClick, navigate } from '../router.ts';
import { useSession } from '../session.tsx';
import { ScheduleModal } from '../components/LazyScheduleModal.tsx';
import { StateTag } from '../components/StateTag.tsx';
import { ApprovalTag } from '../components/ApprovalTag.tsx';
import { useApps } from '../components/useApps.ts';

/** The chain from the first dependency to this deployment. */
function chainOf(d: ScheduledDeployment): ScheduledDeployment[] {
  const out: ScheduledDeployment[] = [];
  for (let x: ScheduledDeployment | null = d; x && out.length < 20; x = x.dependency) out.unshift(x);
  return out;
}

interface ProviderLink {
  label: string;
  href: string;
}

/**
 * Links for the provider's ids: the `console_url` the provider recorded, else one built from the
 * target (ECS service page, App Platform deployment), plus any other URL in the reference.
 */
export function providerLinks(ref: unknown, app: App | null): ProviderLink[] {
  const values: Record<string, unknown> = typeof ref === 'object' && ref !== null ? (ref as Record<string, unknown>) : { id: ref };
  const where = app?.target.type === 'ecs' ? 'the AWS console' : app?.target.type === 'digitalocean' ? 'DigitalOcean'
    : app?.target.type === 'github_actions' ? 'GitHub' : app?.target.type === 'kubernetes' ? 'the Kubernetes API' : "the provider's console";
  const links: ProviderLink[] = Object.entries(values)
    .filter(([, v]) => typeof v === 'string' && /^https?:\/\//.test(v))
    .map(([k, v]) => ({ label: k === 'console_url' ? `Open in ${where}` : k, href: v as string }));
  if (links.length) return links;
  const target = app?.target;
  if (target?.type === 'ecs') {
    const region = encodeURIComponent(target.region);
    links.push({
      label: `Open in ${where}`,
      href: `https://${region}.console.aws.amazon.com/ecs/v2/clusters/${encodeURIComponent(target.cluster)}/services/${encodeURIComponent(target.service)}/deployments?region=${region}`,
    });
  } else if (target?.type === 'digitalocean') {
    const dep = values.deployment_id ?? values.id;
    links.push({
      label: `Open in ${where}`,
      href: `https://cloud.digitalocean.com/apps/${encodeURIComponent(target.app_id)}${typeof dep === 'string' ? `/deployments/${encodeURIComponent(dep)}` : ''}`,
    });
  }
  return links;
}

function ProviderRef({ value, app }: { value: unknown; app: App | null }) {
  if (value === null || value === undefined || value === '') return <Typography.Text type="secondary">none yet</Typography.Text>;
  const all: [string, unknown][] =
    typeof value === 'object' && !Array.isArray(value) ? Object.entries(value as Record<string, unknown>) : [['id', value]];
  const entries = all.filter(([, v]) => !(typeof v === 'string' && /^https?:\/\//.test(v)));
  const links = providerLinks(value, app);
  return (
    <Space orientation="vertical" size={4}>
      {entries.map(([k, v]) => (
        <span key={k}>
          <Typography.Text type="secondary">{k}: </Typography.Text>
          <Typography.Text code copyable>
            {typeof v === 'string' ? v : JSON.stringify(v)}
          </Typography.Text>
        </span>
      ))}
      {links.map((l) => (
        <a key={l.href} href={l.href} target="_blank" rel="noreferrer">
          {l.label}
        </a>
      ))}
    </Space>
  );
}

/**
 * The approval card: who approved (or rejected) and why, and, for owners and deployers while the
 * deployment is scheduled, Approve / Reject with a comment (a rejection needs one). The server
 * decides the rest (the creator cannot approve, a role the policy leaves out, one decision each).
 */
function ApprovalCard({ d, mayDecide, onDone }: { d: ScheduledDeployment; mayDecide: boolean; onDone: () => Promise<void> }) {
  const { message } = AntApp.useApp();
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState<'approve' | 'reject' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const a = d.approval!;
  const zone = viewerZone();
  const decisions = [...a.approvals.map((x) => ({ ...x, kind: 'approved' })), ...(a.rejection ? [{ ...a.rejection, kind: 'rejected' }] : [])];

  async function decide(kind: 'approve' | 'reject') {
    if (kind === 'reject' && !comment.trim()) {
      setError('Say why you reject it: a rejection needs a comment.');
      return;
    }
    setBusy(kind);
    setError(null);
    try {
      await (kind === 'approve' ? api.approve(d.id, comment.trim() || undefined) : api.reject(d.id, comment.trim()));
      message.success(kind === 'approve' ? 'Approved' : 'Rejected');
      setComment('');
      await onDone();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(null);
    }
  }

  return (
    <Card title="Approval" size="small" extra={<ApprovalTag approval={a} />}>
      <Space orientation="vertical" style={{ width: '100%' }}>
        <Typography.Text>
          {a.status === 'rejected'
            ? 'Rejected: at its instant it is skipped.'
            : a.status === 'approved'
              ? `Approved (${a.approvals.length} of ${a.required}).`
              : `Needs ${a.required - a.approvals.length} more approval${a.required - a.approvals.length === 1 ? '' : 's'} (${a.approvals.length} of ${a.required}); not approved at its instant, it is skipped.`}
        </Typography.Text>
        {decisions.length > 0 && (
          <List
            size="small"
            aria-label="Decisions"
            dataSource={decisions}
            renderItem={(x) => (
              <List.Item>
                <Typography.Text>
                  {x.kind} by {x.user.email} · {formatInstant(x.at, zone, true)}
                  {x.via ? ` · through a ${x.via}` : ''}
                  {x.comment ? `: ${x.comment}` : ''}
                </Typography.Text>
              </List.Item>
            )}
          />
        )}
        {mayDecide && a.status !== 'rejected' && (
          <>
            <Input.TextArea
              aria-label="Approval comment"
              placeholder="Comment (required to reject)"
              maxLength={2000}
              autoSize={{ minRows: 1, maxRows: 4 }}
              value={comment}
              onChange={(e) => setComment(e.target.value)}
            />
            <Space wrap>
              <Button type="primary" loading={busy === 'approve'} disabled={busy !== null} onClick={() => decide('approve')}>
                Approve
              </Button>
              <Button danger loading={busy === 'reject'} disabled={busy !== null} onClick={() => decide('reject')}>
                Reject
              </Button>
            </Space>
          </>
        )}
        {error && <Alert type="error" showIcon title={error} />}
      </Space>
    </Card>
  );
}

export default function DeploymentDetailPage({ id }: { id: string }) {
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const { apps } = useApps();
  const [d, setD] = useState<DeploymentDetail | null>(null);
  const [app, setApp] = useState<App | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [rescheduling, setRescheduling] = useState(false);
  const [releasing, setReleasing] = useState(false);
  const [releaseReason, setReleaseReason] = useState('');
  const [releaseError, setReleaseError] = useState<string | null>(null);
  const zone = viewerZone();

  const load = useCallback(async () => {
    try {
      const res = await api.getDeployment(id);
      setD(res.result);
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError && e.status === 404 ? 'No such deployment in your team.' : (e as Error).message);
    }
  }, [id]);

  useEffect(() => {
    setD(null);
    void load();
  }, [load]);

  useEffect(() => {
    if (!d) return;
    let live = true;
    request<App>('GET', `/v1/apps/${encodeURIComponent(d.app.id)}`)
      .then((a) => live && setApp(a))
      .catch(() => live && setApp(null));
    return () => {
      live = false;
    };
  }, [d?.app.id]);

  useDeploymentEvents((e) => {
    if (d && chainOf(d).some((x) => x.id === e.id)) void load();
  });

  if (error) return <Alert type="error" showIcon title={error} action={<Button onClick={() => navigate('/deployments')}>Back</Button>} />;
  if (!d) return <Spin aria-label="Loading deployment" />;

  const chain = chainOf(d);
  // A held deployment (a deploy freeze stopped it) can be rescheduled or canceled like a scheduled one; owners may release it.
  const mayWrite = can(me, 'schedule') && (d.state === 'scheduled' || d.state === 'held');
  const mayRelease = can(me, 'manage') && d.state === 'held';

  async function release() {
    setReleaseError(null);
    try {
      await freezesApi.release(d!.id, releaseReason);
      message.success('Released: it deploys at its time');
      setReleasing(false);
      setReleaseReason('');
      await load();
    } catch (err) {
      setReleaseError((err as Error).message);
    }
  }

  const rb = d.rollback ?? null;
  const rollingBack = rb?.state === 'pending' || rb?.state === 'running';
  // Only what changed its target can be rolled back (the server says why not, 409/422).
  const mayRollBack = can(me, 'schedule') && ['succeeded', 'failed', 'canceled'].includes(d.state) && !rollingBack &&
    typeof d.provider_ref === 'object' && d.provider_ref !== null && (d.provider_ref as Record<string, unknown>).changed === true;
  const events = [...(d.events ?? [])].sort((a, b) => a.at.localeCompare(b.at));

  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <Flex justify="space-between" align="center" wrap gap={8}>
        <Space wrap>
          <Typography.Title level={2} style={{ margin: 0 }}>
            {d.app.name}
          </Typography.Title>
          <StateTag state={d.state} />
        </Space>
        <Space wrap>
          <Button href="/deployments" onClick={linkClick('/deployments')}>
            All deployments
          </Button>
          {mayRelease && <Button type="primary" onClick={() => setReleasing(true)}>Release</Button>}
          {mayWrite && <Button onClick={() => setRescheduling(true)}>Reschedule</Button>}
          {mayWrite && (
            <Popconfirm
              title="Cancel this deployment?"
              okText="Cancel deployment"
              cancelText="Keep"
              onConfirm={async () => {
                try {
                  await api.cancel(d.id);
                  message.success('Canceled');
                  await load();
                } catch (err) {
                  message.error((err as Error).message);
                }
              }}
            >
              <Button danger>Cancel</Button>
            </Popconfirm>
          )}
          {mayRollBack && (
            <Popconfirm
              title="Roll this deployment back?"
              description="Restores what ran before it, and follows that to its end."
              okText="Roll back"
              cancelText="Keep"
              onConfirm={async () => {
                try {
                  await api.rollback(d.id);
                  message.success('Rollback started');
                  await load();
                } catch (err) {
                  message.error((err as Error).message);
                }
              }}
            >
              <Button danger>Roll back</Button>
            </Popconfirm>
          )}
        </Space>
      </Flex>

      {d.state === 'held' && (
        <Alert type="warning" showIcon title="Held by a deploy freeze: it will not deploy by itself"
          description={`${d.error ?? ''} ${mayRelease ? 'Release it to deploy at its time anyway, reschedule it, or cancel it.' : 'An owner can release it; it can also be rescheduled or canceled.'} If nobody does, it ends missed at its expiry.`} />
      )}
      <Modal title="Release held deployment" open={releasing} okText="Release" onOk={release} okButtonProps={{ disabled: !releaseReason.trim() }}
        onCancel={() => setReleasing(false)} destroyOnHidden>
        <Typography.Paragraph>It deploys at its time despite the freeze. The reason is audited and shown on its timeline.</Typography.Paragraph>
        <Input.TextArea aria-label="Reason" placeholder="Why it goes out during the freeze" value={releaseReason} onChange={(e) => setReleaseReason(e.target.value)} maxLength={1000} />
        {releaseError && <Alert type="error" showIcon title={releaseError} style={{ marginTop: 8 }} role="alert" />}
      </Modal>
      {rb && (
        <Card title="Rollback" size="small" aria-label="Rollback">
          {rb.state === 'failed' || rb.state === 'not_possible' ? (
            <Alert
              type="error"
              showIcon
              title={rb.state === 'failed' ? 'The rollback failed: what ran before was NOT restored' : 'No rollback was possible: what ran before was NOT restored'}
              description={rb.error}
              style={{ marginBottom: 12 }}
            />
          ) : rb.state === 'succeeded' ? (
            <Alert type="success" showIcon title="Rolled back: what ran before this deployment was restored" style={{ marginBottom: 12 }} />
          ) : (
            <Alert type="warning" showIcon title={rb.state === 'pending' ? 'Rollback pending' : 'Rolling back…'} style={{ marginBottom: 12 }} />
          )}
          <Descriptions
            size="small"
            column={{ xs: 1, md: 2 }}
            items={[
              { key: 'state', label: 'Rollback state', children: rb.state },
              ...(rb.started_at ? [{ key: 'started', label: 'Started', children: formatInstant(rb.started_at, zone, true) }] : []),
              ...(rb.finished_at ? [{ key: 'finished', label: 'Finished', children: formatInstant(rb.finished_at, zone, true) }] : []),
              { key: 'ref', label: 'Rollback reference', children: <ProviderRef value={rb.ref} app={app} /> },
            ]}
          />
        </Card>
      )}

      <Card title="Schedule" size="small">
        <Descriptions
          size="small"
          column={{ xs: 1, md: 2 }}
          items={[
            { key: 'local', label: 'Scheduled (local)', children: `${formatLocal(d.local)} ${d.timezone} (UTC${d.utc_offset})` },
            { key: 'utc', label: 'UTC', children: d.run_at },
            { key: 'yours', label: `Your time (${zone})`, children: formatInstant(d.run_at, zone, true) },
            { key: 'attempts', label: 'Attempts', children: d.attempts },
            ...(d.dependency
              ? [{ key: 'lead', label: 'Dependency lead', children: formatDuration(d.dependency_lead_seconds ?? 900) }]
              : []),
            ...(d.expires_at ? [{ key: 'exp', label: 'Expires', children: formatInstant(d.expires_at, zone, true) }] : []),
            ...(d.started_at ? [{ key: 'start', label: 'Started', children: formatInstant(d.started_at, zone, true) }] : []),
            ...(d.finished_at ? [{ key: 'end', label: 'Finished', children: formatInstant(d.finished_at, zone, true) }] : []),
            { key: 'id', label: 'ID', children: <Typography.Text copyable>{d.id}</Typography.Text> },
            ...(d.error ? [{ key: 'err', label: 'Error', children: <Typography.Text type="danger">{d.error}</Typography.Text> }] : []),
          ]}
        />
      </Card>

      {d.approval && <ApprovalCard d={d} mayDecide={can(me, 'schedule') && d.state === 'scheduled'} onDone={load} />}

      <Card title="Dependency chain" size="small">
        {chain.length > 1 ? (
          <Steps
            size="small"
            current={chain.length - 1}
            items={chain.map((x) => ({
              title:
                x.id === d.id ? (
                  x.app.name
                ) : (
                  <a href={`/deployments/${x.id}`} onClick={linkClick(`/deployments/${x.id}`)}>
                    {x.app.name}
                  </a>
                ),
              content: (
                <Space orientation="vertical" size={0}>
                  <StateTag state={x.state} />
                  <span>{formatInstant(x.run_at, zone, true)}</span>
                </Space>
              ),
              status: x.state === 'failed' || x.state === 'skipped' || x.state === 'missed' ? 'error' : x.state === 'succeeded' ? 'finish' : x.state === 'running' ? 'process' : 'wait',
            }))}
          />
        ) : (
          <Typography.Text type="secondary">No dependency.</Typography.Text>
        )}
      </Card>

      <Card title="Provider" size="small">
        <ProviderRef value={d.provider_ref} app={app} />
      </Card>

      <Card title="Timeline" size="small">
        {events.length ? (
          <Timeline
            items={events.map((e) => ({
              key: e.id,
              title: formatInstant(e.at, zone, true),
              content: (
                <Space wrap>
                  <StateTag state={e.state} />
                  {e.message && <span>{e.message}</span>}
                </Space>
              ),
            }))}
          />
        ) : (
          <Empty description="No events yet" image={Empty.PRESENTED_IMAGE_SIMPLE} />
        )}
      </Card>

      <Card title="Log" size="small">
        {d.log ? (
          <pre style={{ margin: 0, maxHeight: 400, overflow: 'auto', whiteSpace: 'pre-wrap', wordBreak: 'break-word' }} aria-label="Deployment log" tabIndex={0}>
            {d.log}
          </pre>
        ) : (
          <Typography.Text type="secondary">No output yet.</Typography.Text>
        )}
      </Card>

      {rescheduling && (
        <ScheduleModal
          open
          target={{ kind: 'reschedule', deployment: d }}
          apps={apps}
          onClose={() => setRescheduling(false)}
          onDone={() => {
            setRescheduling(false);
            void load();
          }}
        />
      )}
    </Space>
  );
}
