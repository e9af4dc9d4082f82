// age says how long ago t was, as kubectl does: 45s, 3m, 5h, 2d.
export function age(t: string | undefined, now = Date.now()): string {
  if (!t) return '—';
  const s = Math.max(0, Math.floor((now - Date.parse(t)) / 1000));
  if (Number.isNaN(s)) return '—';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

// count shortens large numbers: 1234 -> 1.2k.
export function count(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n * 100) / 100);
  for (const [d, u] of [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (a >= d) return `${(n / d).toFixed(a / d < 10 ? 1 : 0)}${u}`;
  }
  return String(n);
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
