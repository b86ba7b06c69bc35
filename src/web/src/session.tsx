/** Who is logged in: the token lives in localStorage so a reload keeps the session. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, getToken, setToken, setUnauthorizedHandler, type Me } from './api.ts';

interface Session {
  me: Me | null;
  /** True while a stored token is being checked against /v1/me. */
  loading: boolean;
  login(email: string, password: string): Promise<void>;
  /** Signs in with a token obtained another way (single sign-on). */
  adopt(accessToken: string): Promise<void>;
  /** Reads /v1/me again (after a password change). */
  refresh(): Promise<void>;
  logout(): void;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState<boolean>(() => getToken() !== null);

  const logout = useCallback(() => {
    setToken(null);
    setMe(null);
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(logout);
    if (!getToken()) return;
    let live = true;
    api
      .me()
      .then((m) => live && setMe(m))
      .catch(() => live && logout())
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [logout]);

  const login = useCallback(async (email: string, password: string) => {
    const t = await api.login(email, password);
    setToken(t.access_token);
    try {
      setMe(await api.me());
    } catch (err) {
      setToken(null);
      throw err;
    }
  }, []);

  const adopt = useCallback(async (accessToken: string) => {
    setToken(accessToken);
    try {
      setMe(await api.me());
    } catch (err) {
      setToken(null);
      throw err;
    }
  }, []);

  const refresh = useCallback(async () => {
    setMe(await api.me());
  }, []);

  const value = useMemo(() => ({ me, loading, login, adopt, refresh, logout }), [me, loading, login, adopt, refresh, logout]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}
