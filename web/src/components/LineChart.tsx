import { plot, type Series } from '../chart';

const W = 520;
const H = 160;
const colors = ['#2563eb', '#16a34a', '#dc2626', '#d97706'];

// LineChart draws series over time, with a table of the same numbers for screen readers.
export function LineChart({ title, series, format, domain }: { title: string; series: Series[]; format: (n: number) => string; domain?: [number, number] }) {
  const p = plot(series, W, H, domain);
  const empty = series.every((s) => s.points.length === 0);
  const id = title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const long = p.t1 - p.t0 > 24 * 3600 * 1000;
  const time = (t: number) =>
    new Date(t).toLocaleString([], long ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' } : { hour: '2-digit', minute: '2-digit' });
  return (
    <figure class="chart" aria-labelledby={`${id}-title`}>
      <figcaption id={`${id}-title`}>{title}</figcaption>
      <ul class="legend">
        {series.map((s, i) => (
          <li key={s.label}>
            <span class="swatch" style={{ background: colors[i % colors.length] }} />
            {s.label}
          </li>
        ))}
      </ul>
      {empty ? (
        <p class="empty">No data in this period yet.</p>
      ) : (
        <svg viewBox={`-56 -8 ${W + 64} ${H + 28}`} role="img" aria-label={`${title} over time`} data-points={p.paths.reduce((n, s) => n + s.points.length, 0)}>
          {p.ticks.map((t) => (
            <g key={t}>
              <line class="grid" x1={0} x2={W} y1={H - (t / p.max) * H} y2={H - (t / p.max) * H} />
              <text class="axis" x={-6} y={H - (t / p.max) * H + 4} text-anchor="end">
                {format(t)}
              </text>
            </g>
          ))}
          <text class="axis" x={0} y={H + 18}>
            {time(p.t0)}
          </text>
          <text class="axis" x={W} y={H + 18} text-anchor="end">
            {time(p.t1)}
          </text>
          {p.paths.map((s, i) => (
            <g key={s.label} class="series">
              <path d={s.d} fill="none" stroke={colors[i % colors.length]} stroke-width={2} />
              {s.points.map((pt) => (
                <circle key={pt.t} class="point" cx={pt.x} cy={pt.y} r={2.5} fill={colors[i % colors.length]}>
                  <title>{`${s.label} ${time(pt.t)}: ${format(pt.v)}`}</title>
                </circle>
              ))}
            </g>
          ))}
        </svg>
      )}
      {!empty && (
        <details class="chart-data">
          <summary>Data table</summary>
          <table>
            <caption class="sr-only">{title}</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                {series.map((s) => (
                  <th scope="col" key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {(series[0]?.points ?? []).map((pt, i) => (
                <tr key={pt.t}>
                  <td>{time(pt.t)}</td>
                  {series.map((s) => (
                    <td key={s.label}>{s.points[i] ? format(s.points[i].v) : '—'}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </figure>
  );
}
