// Scales and paths of the metrics charts (SVG, no chart library).

export interface Series {
  label: string;
  points: { t: number; v: number }[];
}

export interface Plot {
  paths: { label: string; d: string; points: { x: number; y: number; t: number; v: number }[] }[];
  max: number;
  ticks: number[];
  t0: number;
  t1: number;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, so the axis reads well.
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// plot places series in a width x height box, time left to right over domain (default: the
// points' own span) and 0 at the bottom.
export function plot(series: Series[], width: number, height: number, domain?: [number, number]): Plot {
  const all = series.flatMap((s) => s.points);
  const t0 = domain ? domain[0] : all.length ? Math.min(...all.map((p) => p.t)) : 0;
  const t1 = domain ? domain[1] : all.length ? Math.max(...all.map((p) => p.t)) : 1;
  const max = niceMax(all.length ? Math.max(...all.map((p) => p.v)) : 0);
  const x = (t: number) => (t1 === t0 ? width / 2 : ((t - t0) / (t1 - t0)) * width);
  const y = (v: number) => height - (v / max) * height;
  return {
    max,
    t0,
    t1,
    ticks: [0, max / 2, max],
    paths: series.map((s) => {
      const pts = s.points.map((p) => ({ x: round(x(p.t)), y: round(y(p.v)), t: p.t, v: p.v }));
      return { label: s.label, points: pts, d: pts.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ') };
    }),
  };
}

const round = (n: number) => Math.round(n * 10) / 10;
