import { useEffect, useState } from 'preact/hooks';
import { ApiError, get, watch, withQuery, type WatchEvent } from './api';
import type { KubeObject, List } from './types';

export interface Live<T> {
  items: T[];
  loading: boolean;
  error: unknown;
}

// applyEvent is a list after one watch event, in name order.
export function applyEvent<T extends KubeObject>(items: T[], e: WatchEvent<T>): T[] {
  if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return items;
  const key = (o: T) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const k = key(e.object);
  const rest = items.filter((o) => key(o) !== k);
  if (e.type === 'DELETED') return rest;
  return sortByName([...rest, e.object]);
}

export function sortByName<T extends KubeObject>(items: T[]): T[] {
  return items.sort((a, b) =>
    (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name),
  );
}

// useLiveList lists path and keeps the list current from a watch, listing again when the watch
// ends or its resource version expired. path '' lists nothing.
export function useLiveList<T extends KubeObject>(path: string, query?: Record<string, string>): Live<T> {
  const [state, setState] = useState<Live<T>>({ items: [], loading: true, error: null });
  const q = query ? JSON.stringify(query) : '';
  useEffect(() => {
    if (!path) {
      setState({ items: [], loading: false, error: null });
      return;
    }
    const abort = new AbortController();
    let items: T[] = [];
    setState({ items: [], loading: true, error: null });
    const run = async () => {
      let delay = 1000;
      while (!abort.signal.aborted) {
        try {
          const list = await get<List<T>>(withQuery(path, query), { signal: abort.signal });
          items = sortByName(list.items ?? []);
          setState({ items, loading: false, error: null });
          delay = 1000;
          await watch<T>(
            withQuery(path, query),
            list.metadata.resourceVersion ?? '',
            (e) => {
              if (e.type === 'ERROR') throw new ApiError((e.object as { code?: number }).code ?? 500, e.object as never);
              items = applyEvent(items, e);
              setState({ items, loading: false, error: null });
            },
            abort.signal,
          );
        } catch (err) {
          if (abort.signal.aborted) return;
          if (err instanceof ApiError && (err.forbidden || err.unauthorized || err.notFound)) {
            setState({ items: [], loading: false, error: err });
            return;
          }
          if (!(err instanceof ApiError && err.code === 410)) setState((s) => ({ ...s, loading: false, error: s.items.length ? null : err }));
        }
        await sleep(delay, abort.signal);
        delay = Math.min(delay * 2, 30000);
      }
    };
    void run();
    return () => abort.abort();
  }, [path, q]);
  return state;
}

// useLiveObject is one object, kept current (a list and watch of its name).
export function useLiveObject<T extends KubeObject>(path: string, name: string): { object: T | undefined; loading: boolean; error: unknown } {
  const live = useLiveList<T>(path, { fieldSelector: `metadata.name=${name}` });
  return { object: live.items[0], loading: live.loading, error: live.error };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

// useNow re-renders every interval, for ages that grow.
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
