import { useEffect, useState } from 'preact/hooks';
import { get } from '../api';
import type { Series } from '../chart';
import { ErrorNotice } from '../components/common';
import { LineChart } from '../components/LineChart';
import { bytes, count } from '../format';
import type { Metrics, MetricsSummary } from '../types';

const ranges = [
  { start: '-1h', interval: '1m', label: 'Last hour' },
  { start: '-6h', interval: '5m', label: 'Last 6 hours' },
  { start: '-24h', interval: '30m', label: 'Last day' },
  { start: '-168h', interval: '3h', label: 'Last week' },
];

// MetricsPanel charts a pipeline's (or core instance's) metrics subresource, read again every 30 s.
export function MetricsPanel({ path }: { path: string }) {
  const [range, setRange] = useState(0);
  const [m, setM] = useState<Metrics | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      get<Metrics>(path, { query: { start: ranges[range].start, interval: ranges[range].interval } })
        .then((r) => live && (setM(r), setError(null)))
        .catch((err) => live && setError(err));
    void load();
    const t = setInterval(load, 30000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [path, range]);
  const series = (label: string, pick: (s: MetricsSummary) => number): Series => ({
    label,
    points: (m?.series ?? []).map((p) => ({ t: Date.parse(p.time), v: pick(p) })),
  });
  const s = m?.summary;
  const domain: [number, number] | undefined = m ? [Date.parse(m.start), Date.parse(m.end)] : undefined;
  return (
    <div class="metrics">
      <div class="filters">
        <label>
          Period{' '}
          <select value={range} onChange={(e) => setRange(Number((e.target as HTMLSelectElement).value))}>
            {ranges.map((r, i) => (
              <option key={r.start} value={i}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNotice error={error} doing="read these metrics" />
      {s && (
        <dl class="stats" data-testid="metrics-summary">
          <div>
            <dt>Records in</dt>
            <dd>{count(s.input.records.total)}</dd>
          </div>
          <div>
            <dt>Records out</dt>
            <dd>{count(s.output.records.total)}</dd>
          </div>
          <div>
            <dt>Bytes in</dt>
            <dd>{bytes(s.input.bytes.total)}</dd>
          </div>
          <div>
            <dt>Bytes out</dt>
            <dd>{bytes(s.output.bytes.total)}</dd>
          </div>
          <div>
            <dt>Errors</dt>
            <dd>{count(s.output.errors.total)}</dd>
          </div>
          <div>
            <dt>Retries</dt>
            <dd>{count(s.output.retries.total)}</dd>
          </div>
        </dl>
      )}
      {m && (
        <div class="charts">
          <LineChart title="Records" domain={domain} format={count} series={[series('in', (p) => p.input.records.total), series('out', (p) => p.output.records.total)]} />
          <LineChart title="Bytes" domain={domain} format={bytes} series={[series('in', (p) => p.input.bytes.total), series('out', (p) => p.output.bytes.total)]} />
          <LineChart
            title="Errors and retries"
            domain={domain}
            format={count}
            series={[series('errors', (p) => p.output.errors.total), series('retries', (p) => p.output.retries.total), series('failed retries', (p) => p.output.retriesFailed.total)]}
          />
        </div>
      )}
    </div>
  );
}
