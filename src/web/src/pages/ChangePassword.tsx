/**
 * Change your password. Opened on its own (nothing else is reachable) after signing in with the
 * printed one-time password; otherwise from the header. The server keeps this session and ends
 * the others.
 */
import { useState } from 'react';
import { Alert, App as AntApp, Button, Card, Form, Input, Typography } from 'antd';
import { ApiError, accountsApi } from '../api.ts';
import { navigate } from '../router.ts';
import { useSession } from '../session.tsx';

interface Values {
  current_password: string;
  new_password: string;
  confirm: string;
}

/** The rule the server checks (src/services/password-policy.ts), shown before it refuses. */
const MIN_LENGTH = 12;

export default function ChangePasswordPage({ forced = false }: { forced?: boolean }) {
  const { refresh, logout } = useSession();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<Values>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onFinish(v: Values) {
    setBusy(true);
    setError(null);
    try {
      await accountsApi.changePassword(v.current_password, v.new_password);
      message.success('Password changed; your other sessions were signed out');
      form.resetFields();
      await refresh();
      if (!forced) navigate('/deployments');
    } catch (err) {
      if (err instanceof ApiError && (err.field === 'current_password' || err.field === 'new_password')) {
        form.setFields([{ name: err.field, errors: [err.message] }]);
      } else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const body = (
    <section aria-labelledby="password-title" style={{ maxWidth: 420 }}>
      <Typography.Title level={forced ? 3 : 2} id="password-title" style={{ marginTop: 0 }}>
        Change your password
      </Typography.Title>
      {forced && (
        <Alert
          type="warning"
          showIcon
          style={{ marginBottom: 16 }}
          title="You signed in with the one-time password"
          description="Choose your own password before you continue."
        />
      )}
      <Form<Values> form={form} name="password" layout="vertical" onFinish={onFinish} requiredMark={false}>
        <Form.Item label="Current password" name="current_password" rules={[{ required: true, message: 'Enter your current password' }]}>
          <Input.Password autoComplete="current-password" autoFocus />
        </Form.Item>
        <Form.Item
          label="New password"
          name="new_password"
          extra={`At least ${MIN_LENGTH} characters, not a common password.`}
          rules={[{ required: true, message: 'Enter a new password' }, { min: MIN_LENGTH, message: `At least ${MIN_LENGTH} characters` }]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item
          label="Repeat the new password"
          name="confirm"
          dependencies={['new_password']}
          rules={[
            { required: true, message: 'Repeat the new password' },
            ({ getFieldValue }) => ({
              validator: (_, value) => (!value || value === getFieldValue('new_password') ? Promise.resolve() : Promise.reject(new Error('The two passwords differ'))),
            }),
          ]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 16 }} />}
        <Button type="primary" htmlType="submit" loading={busy}>
          Change password
        </Button>
        {forced && (
          <Button type="link" onClick={logout}>
            Log out
          </Button>
        )}
      </Form>
    </section>
  );

  if (!forced) return body;
  return (
    <main style={{ display: 'grid', placeItems: 'center', minHeight: '100vh', padding: 16, background: '#f5f5f5' }}>
      <Card style={{ width: '100%', maxWidth: 460 }}>{body}</Card>
    </main>
  );
}
