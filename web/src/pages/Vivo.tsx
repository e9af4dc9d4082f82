import { useEffect, useRef, useState } from 'preact/hooks';
import { get, resourcePath } from '../api';
import { ErrorNotice } from '../components/common';
import { append, nextFrom, page, rowsOf, safeJSON, search, WINDOW, type TapRow } from '../tap';
import type { PipelineTap } from '../types';

const PAGE = 25;

// VivoPanel polls the pipeline's tap (every 5 s by default) and shows what passed through it:
// log records as rows, metrics and traces chunks as Fluent Bit wrote them. The first answer
// shows at once, even with a single record in it.
export function VivoPanel({ namespace, name }: { namespace: string; name: string }) {
  const [signal, setSignal] = useState('logs');
  const [every, setEvery] = useState(5);
  const [paused, setPaused] = useState(false);
  const [rows, setRows] = useState<TapRow[]>([]);
  const [query, setQuery] = useState('');
  const [at, setAt] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [last, setLast] = useState<Date | null>(null);
  const from = useRef<number | undefined>(undefined);
  const seq = useRef(0);
  useEffect(() => {
    from.current = undefined;
    setRows([]);
    setAt(0);
  }, [signal, namespace, name]);
  useEffect(() => {
    if (paused) return;
    let live = true;
    const poll = async () => {
      try {
        const tap = await get<PipelineTap>(resourcePath('pipelines', namespace, name) + '/tap', {
          query: { signal, from: from.current, limit: 100 },
        });
        if (!live) return;
        from.current = nextFrom(from.current, tap);
        const more = rowsOf(tap, seq.current);
        seq.current += more.length;
        if (more.length) setRows((r) => append(r, more));
        setError(null);
        setLast(new Date());
      } catch (err) {
        if (live) setError(err);
      }
    };
    void poll();
    const t = setInterval(poll, every * 1000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [paused, every, signal, namespace, name]);
  const found = search(rows, query);
  const pg = page(found, at, PAGE);
  return (
    <div class="vivo">
      <div class="toolbar" role="toolbar" aria-label="Vivo">
        <label>
          Signal{' '}
          <select value={signal} onChange={(e) => setSignal((e.target as HTMLSelectElement).value)}>
            <option value="logs">Logs</option>
            <option value="metrics">Metrics</option>
            <option value="traces">Traces</option>
          </select>
        </label>
        <label>
          Every{' '}
          <select value={every} onChange={(e) => setEvery(Number((e.target as HTMLSelectElement).value))}>
            {[1, 2, 5, 10, 30].map((s) => (
              <option key={s} value={s}>
                {s} s
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <button type="button" onClick={() => (setRows([]), setAt(0))}>
          Clear
        </button>
        <label class="grow">
          <span class="sr-only">Search</span>
          <input type="search" placeholder="Search records and metadata" value={query} onInput={(e) => (setQuery((e.target as HTMLInputElement).value), setAt(0))} />
        </label>
      </div>
      <p class="muted" aria-live="polite" data-testid="vivo-status">
        {paused ? 'Paused. ' : `Reading every ${every} s. `}
        {found.length} of {rows.length} {signal === 'logs' ? 'records' : 'chunks'} (the last {WINDOW} are kept)
        {last ? `, read at ${last.toLocaleTimeString()}` : ''}.
      </p>
      <ErrorNotice error={error} doing="read this pipeline's tap" />
      {rows.length === 0 && !error && <p class="empty">Nothing passed through yet{paused ? '' : '; waiting…'}</p>}
      {pg.rows.length > 0 && (
        <table class="list records" data-testid="vivo-records">
          <caption class="sr-only">
            {signal}, newest first, page {pg.page + 1} of {pg.pages}
          </caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Tag</th>
              <th scope="col">Source</th>
              {signal === 'logs' && <th scope="col">Metadata</th>}
              <th scope="col">{signal === 'logs' ? 'Record' : 'Data'}</th>
            </tr>
          </thead>
          <tbody>
            {pg.rows.map((r) => (
              <tr key={r.seq}>
                <td class="nowrap">{r.time ? r.time.replace('T', ' ').replace(/\.(\d{3})\d*Z$/, '.$1Z') : '—'}</td>
                <td>{r.tag}</td>
                <td>{r.source}</td>
                {signal === 'logs' && (
                  <td>
                    <code>{safeJSON(r.metadata) || '—'}</code>
                  </td>
                )}
                <td class="json">
                  {signal === 'logs' ? <code>{safeJSON(r.body)}</code> : <pre>{JSON.stringify(r.body, null, 2)}</pre>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pg.pages > 1 && (
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled={pg.page === 0} onClick={() => setAt(pg.page - 1)}>
            Newer
          </button>
          <span>
            Page {pg.page + 1} of {pg.pages}
          </span>
          <button type="button" disabled={pg.page >= pg.pages - 1} onClick={() => setAt(pg.page + 1)}>
            Older
          </button>
        </nav>
      )}
    </div>
  );
}
