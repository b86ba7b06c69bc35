/** The team's applications (a short list), loaded once per page and reloadable. */
import { useCallback, useEffect, useState } from 'react';
import { api, listAll, type App } from '../api.ts';

export function useApps(): { apps: App[]; loading: boolean; error: string | null; reload(): void } {
  const [apps, setApps] = useState<App[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    listAll((c) => api.listApps(c))
      .then((a) => live && (setApps(a.sort((x, y) => x.name.localeCompare(y.name))), setError(null)))
      .catch((e: Error) => live && setError(e.message))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { apps, loading, error, reload };
}
