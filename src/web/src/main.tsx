/**
 * Entry of the web UI: session, layout and the client routes. Each page is its own chunk
 * (React.lazy) so the first page downloads only what it shows.
 */
import { StrictMode, Suspense, lazy, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { App as AntApp, Button, ConfigProvider, Grid, Layout, Menu, Space, Spin, Typography } from 'antd';
import { SessionProvider, useSession } from './session.tsx';
import { navigate, usePath } from './router.ts';
import { LoginPage } from './pages/Login.tsx';

const DeploymentsPage = lazy(() => import('./pages/Deployments.tsx'));
const DeploymentDetailPage = lazy(() => import('./pages/DeploymentDetail.tsx'));
const CalendarPage = lazy(() => import('./pages/Calendar.tsx'));
const AppsPage = lazy(() => import('./pages/Apps.tsx'));
const CredentialsPage = lazy(() => import('./pages/Credentials.tsx'));
const MembersPage = lazy(() => import('./pages/Members.tsx'));
const TokensPage = lazy(() => import('./pages/Tokens.tsx'));
const ChangePasswordPage = lazy(() => import('./pages/ChangePassword.tsx'));
const SchedulesPage = lazy(() => import('./pages/Schedules.tsx'));
const NotificationsPage = lazy(() => import('./pages/Notifications.tsx'));

const { Header, Content, Sider } = Layout;

function Page({ path }: { path: string }) {
  const { me } = useSession();
  const detail = /^\/deployments\/([^/]+)$/.exec(path);
  if (detail) return <DeploymentDetailPage id={decodeURIComponent(detail[1])} />;
  if (path === '/calendar') return <CalendarPage />;
  if (path === '/apps') return <AppsPage />;
  if (path === '/schedules') return <SchedulesPage />;
  if (path === '/credentials' && me?.role === 'owner') return <CredentialsPage />;
  if (path === '/members' && me?.role === 'owner') return <MembersPage />;
  if (path === '/notifications' && me?.role === 'owner') return <NotificationsPage />;
  if (path === '/tokens') return <TokensPage />;
  if (path === '/password') return <ChangePasswordPage />;
  return <DeploymentsPage />;
}

function Shell() {
  const { me, loading, logout } = useSession();
  const path = usePath();
  const screens = Grid.useBreakpoint();

  useEffect(() => {
    if (!loading && !me && path !== '/login') navigate(`/login`, { replace: true });
    if (me && (path === '/login' || path === '/')) navigate('/deployments', { replace: true });
  }, [me, loading, path]);

  useEffect(() => {
    const titles: Record<string, string> = {
      '/login': 'Log in', '/deployments': 'Deployments', '/calendar': 'Calendar', '/apps': 'Applications', '/credentials': 'Credentials',
      '/members': 'Members', '/tokens': 'API tokens', '/password': 'Change password', '/schedules': 'Schedules',
      '/notifications': 'Notifications',
    };
    document.title = `${titles[path] ?? (path.startsWith('/deployments/') ? 'Deployment' : 'shipclock')} · shipclock`;
  }, [path]);

  if (loading) {
    return (
      <div style={{ display: 'grid', placeItems: 'center', minHeight: '100vh' }}>
        <Spin aria-label="Loading" />
      </div>
    );
  }
  if (!me) return <LoginPage />;
  // Signed in with the printed one-time password: nothing else until it is changed.
  if (me.password_change_required) {
    return (
      <Suspense fallback={<Spin aria-label="Loading page" />}>
        <ChangePasswordPage forced />
      </Suspense>
    );
  }

  const section = path.startsWith('/deployments') || path === '/' ? '/deployments' : path;
  const items = [
    { key: '/deployments', label: <a href="/deployments" onClick={(e) => e.preventDefault()}>Deployments</a> },
    { key: '/calendar', label: <a href="/calendar" onClick={(e) => e.preventDefault()}>Calendar</a> },
    { key: '/apps', label: <a href="/apps" onClick={(e) => e.preventDefault()}>Applications</a> },
    { key: '/schedules', label: <a href="/schedules" onClick={(e) => e.preventDefault()}>Schedules</a> },
    ...(me.role === 'owner' ? [{ key: '/credentials', label: <a href="/credentials" onClick={(e) => e.preventDefault()}>Credentials</a> }] : []),
    ...(me.role === 'owner' ? [{ key: '/members', label: <a href="/members" onClick={(e) => e.preventDefault()}>Members</a> }] : []),
    ...(me.role === 'owner' ? [{ key: '/notifications', label: <a href="/notifications" onClick={(e) => e.preventDefault()}>Notifications</a> }] : []),
    { key: '/tokens', label: <a href="/tokens" onClick={(e) => e.preventDefault()}>API tokens</a> },
  ];

  // The sections sit in a side menu: a horizontal one folds items it cannot fit into an overflow
  // "…" menu, which hid "API tokens" once Schedules was added (and more sections are coming).
  return (
    <Layout style={{ minHeight: '100vh' }}>
      <Header style={{ display: 'flex', alignItems: 'center', gap: 12, paddingInline: screens.md ? 24 : 8 }}>
        <Typography.Text strong style={{ color: '#fff', fontSize: 18, whiteSpace: 'nowrap', flex: 1 }}>
          shipclock
        </Typography.Text>
        <Space size="small">
          {screens.md && (
            <Typography.Text style={{ color: 'rgba(255,255,255,0.75)' }}>
              {me.email} · {me.team.name} · {me.role}
            </Typography.Text>
          )}
          {!me.sso && (
            <Button size="small" onClick={() => navigate('/password')}>
              Password
            </Button>
          )}
          <Button size="small" onClick={logout}>
            Log out
          </Button>
        </Space>
      </Header>
      <Layout>
        <Sider breakpoint="md" collapsedWidth={0} width={180} theme="light">
          <nav aria-label="Main">
            <Menu mode="inline" selectedKeys={[section]} items={items} onClick={(e) => navigate(e.key)} style={{ borderInlineEnd: 0 }} />
          </nav>
        </Sider>
        <Content style={{ padding: screens.md ? 24 : 8, minWidth: 0 }}>
          <Suspense fallback={<Spin aria-label="Loading page" />}>
            <main>
              <Page path={path} />
            </main>
          </Suspense>
        </Content>
      </Layout>
    </Layout>
  );
}

function Root() {
  // The theme's motion makes tests and slow machines wait on animations; keep it short.
  const [theme] = useState({ token: { motionDurationSlow: '0.15s', motionDurationMid: '0.1s' } });
  return (
    <ConfigProvider theme={theme}>
      <AntApp>
        <SessionProvider>
          <Shell />
        </SessionProvider>
      </AntApp>
    </ConfigProvider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Root />
  </StrictMode>,
);
