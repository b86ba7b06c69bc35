/**
 * The login form: "Email", "Password", "Log in", and "Sign in with SSO" when the server has
 * single sign-on. The identity provider's round trip ends here: /login#sso_code=… is exchanged
 * for a session; /login#sso_error=… shows why the sign-in was refused.
 */
import { type ReactNode, useEffect, useState } from 'react';
import { Alert, Button, Card, Divider, Form, Input, Spin, Typography } from 'antd';
import { ApiError, accountsApi } from '../api.ts';
import { useSession } from '../session.tsx';

/** What each refusal of src/services/oidc.ts means for the person who was refused. */
const SSO_REFUSALS: Record<string, { title: string; text: string }> = {
  no_team: {
    title: 'Your account has no access to shipclock',
    text: 'Your identity provider signed you in, but none of your groups is given a team in shipclock. Ask your administrator to add you to a group that has access.',
  },
  no_email: {
    title: 'No email address from your identity provider',
    text: 'Your identity provider did not share your email address, which shipclock needs. Ask your administrator to allow the email scope.',
  },
  email_taken: {
    title: 'Your email is already used here',
    text: 'A shipclock account with your email exists and could not be joined to your single sign-on account. Ask an administrator.',
  },
  misconfigured: {
    title: 'Single sign-on is not set up correctly',
    text: 'Your group is given a team that does not exist. Ask your administrator; the server log says which.',
  },
  expired: {
    title: 'The sign-in took too long',
    text: 'The sign-in expired or was started in another browser. Try again.',
  },
  failed: {
    title: 'The sign-in did not complete',
    text: 'Your identity provider refused the sign-in or answered something unexpected. Try again; the server log says more.',
  },
  unavailable: {
    title: 'The identity provider does not answer',
    text: 'Try again later, or sign in with your password.',
  },
};

const exchanged = new Set<string>();

function readHash(): { code?: string; error?: string } {
  const h = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  return { code: h.get('sso_code') ?? undefined, error: h.get('sso_error') ?? undefined };
}

/** Removes the one-time code or error from the address bar and the history entry. */
function clearHash(): void {
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
}

export function LoginPage() {
  const { login, adopt } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [sso, setSso] = useState(false);
  const [returned] = useState(readHash);
  const [exchanging, setExchanging] = useState(returned.code !== undefined);
  const [refusal, setRefusal] = useState<string | undefined>(returned.error);

  useEffect(() => {
    let live = true;
    accountsApi.authMethods().then((m) => live && setSso(m.sso)).catch(() => {});
    return () => {
      live = false;
    };
  }, []);

  useEffect(() => {
    if (returned.code === undefined && returned.error === undefined) return;
    clearHash();
    const code = returned.code;
    // The code works once: never send it twice (React may run an effect twice in development).
    if (code === undefined || exchanged.has(code)) return;
    exchanged.add(code);
    accountsApi
      .ssoExchange(code)
      .then((t) => adopt(t.access_token))
      .catch(() => setRefusal('expired'))
      .finally(() => setExchanging(false));
  }, [returned, adopt]);

  async function onFinish(values: { email: string; password: string }) {
    setBusy(true);
    setError(null);
    try {
      await login(values.email.trim(), values.password);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError('Wrong email or password.');
      else if (err instanceof ApiError && err.status === 429) setError(`Too many failed sign-ins. ${err.message.replace(/^too many failed sign-ins; /, '')}.`);
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const card = (body: ReactNode) => (
    <main style={{ display: 'grid', placeItems: 'center', minHeight: '100vh', padding: 16, background: '#f5f5f5' }}>
      <Card style={{ width: '100%', maxWidth: 420 }}>{body}</Card>
    </main>
  );

  if (exchanging) return card(<Spin aria-label="Signing in" />);

  if (refusal) {
    const r = SSO_REFUSALS[refusal] ?? SSO_REFUSALS.failed;
    return card(
      <section aria-labelledby="refused-title">
        <Typography.Title level={3} id="refused-title" style={{ marginTop: 0 }}>
          Sign-in refused
        </Typography.Title>
        <Alert type="error" showIcon title={r.title} description={r.text} role="alert" style={{ marginBottom: 16 }} />
        <Button onClick={() => setRefusal(undefined)}>Back to sign in</Button>
      </section>,
    );
  }

  return card(
    <>
      <Typography.Title level={3} style={{ marginTop: 0 }}>
        shipclock
      </Typography.Title>
      <Typography.Paragraph type="secondary">Log in to schedule and watch deployments.</Typography.Paragraph>
      <Form name="login" layout="vertical" onFinish={onFinish} requiredMark={false}>
        <Form.Item label="Email" name="email" rules={[{ required: true, message: 'Enter your email' }]}>
          <Input type="email" autoComplete="username" autoFocus />
        </Form.Item>
        <Form.Item label="Password" name="password" rules={[{ required: true, message: 'Enter your password' }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        {error && <Alert type="error" title={error} showIcon style={{ marginBottom: 16 }} role="alert" />}
        <Button type="primary" htmlType="submit" block loading={busy}>
          Log in
        </Button>
      </Form>
      {sso && (
        <>
          <Divider plain>or</Divider>
          {/* A plain link: the server answers with the redirect to the identity provider. */}
          <Button block href="/v1/auth/oidc/login">
            Sign in with SSO
          </Button>
        </>
      )}
    </>,
  );
}
