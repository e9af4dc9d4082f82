import { describe, expect, it } from 'vitest';
import { niceMax, plot } from './chart';
import { age, bytes, count } from './format';

describe('niceMax', () => {
  it.each([
    [0, 1],
    [0.3, 0.5],
    [7, 10],
    [12, 20],
    [450, 500],
    [1000, 1000],
  ])('%d -> %d', (v, want) => expect(niceMax(v)).toBe(want));
});

describe('plot', () => {
  it('puts the first point left, the last right, zero at the bottom', () => {
    const p = plot([{ label: 'in', points: [{ t: 0, v: 0 }, { t: 60, v: 5 }, { t: 120, v: 10 }] }], 200, 100);
    expect(p.max).toBe(10);
    expect(p.paths[0].d).toBe('M0,100 L100,50 L200,0');
  });
  it('centres a single point', () => {
    const p = plot([{ label: 'in', points: [{ t: 5, v: 4 }] }], 200, 100);
    expect(p.paths[0].points[0]).toMatchObject({ x: 100, y: 20 });
  });
  it('spans the period asked for', () => {
    const p = plot([{ label: 'in', points: [{ t: 50, v: 10 }] }], 200, 100, [0, 100]);
    expect(p.paths[0].d).toBe('M100,0');
    expect([p.t0, p.t1]).toEqual([0, 100]);
  });
  it('draws nothing without points', () => {
    expect(plot([{ label: 'in', points: [] }], 200, 100).paths[0].d).toBe('');
  });
});

describe('format', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  it.each([
    ['2026-01-01T23:59:30Z', '30s'],
    ['2026-01-01T23:50:00Z', '10m'],
    ['2026-01-01T10:00:00Z', '14h'],
    ['2025-12-20T00:00:00Z', '13d'],
    [undefined, '—'],
  ])('age %s', (t, want) => expect(age(t, now)).toBe(want));
  it.each([
    [12, '12'],
    [1234, '1.2k'],
    [56789, '57k'],
    [3_400_000, '3.4M'],
  ])('count %d', (n, want) => expect(count(n)).toBe(want));
  it('bytes', () => {
    expect(bytes(512)).toBe('512 B');
    expect(bytes(2048)).toBe('2.0 KiB');
  });
});
