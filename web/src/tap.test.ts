import { describe, expect, it } from 'vitest';
import { append, nextFrom, page, rowsOf, search } from './tap';
import type { PipelineTap } from './types';

const logs: PipelineTap = {
  metadata: { name: 'p' },
  signal: 'logs',
  nextID: 3,
  chunks: [
    {
      sourceType: 'dummy',
      sourceName: 'dummy.0',
      tag: 'edge',
      records: [{ time: '2026-01-01T00:00:00.000000Z', metadata: { host: 'a' }, record: { message: 'first' } }],
    },
    {
      sourceName: 'tail.0',
      tag: 'app',
      records: [
        { time: '2026-01-01T00:00:01.000000Z', record: { message: 'Second', level: 'warn' } },
        { time: '2026-01-01T00:00:02.000000Z', record: { message: 'third' } },
      ],
    },
  ],
};

describe('rowsOf', () => {
  it('shows a single record at once', () => {
    const one: PipelineTap = { metadata: { name: 'p' }, signal: 'logs', chunks: [logs.chunks![0]] };
    expect(rowsOf(one, 0).map((r) => r.body)).toEqual([{ message: 'first' }]);
  });
  it('numbers records of every chunk in order', () => {
    const rows = rowsOf(logs, 10);
    expect(rows.map((r) => [r.seq, r.tag, r.source])).toEqual([
      [10, 'edge', 'dummy.0'],
      [11, 'app', 'tail.0'],
      [12, 'app', 'tail.0'],
    ]);
  });
  it('keeps metrics and traces chunks whole', () => {
    const metrics: PipelineTap = {
      metadata: { name: 'p' },
      signal: 'metrics',
      chunks: [{ sourceName: 'fluentbit_metrics.0', data: { meta: {}, metrics: [{ name: 'x' }] } }, { sourceName: 'empty' }],
    };
    const rows = rowsOf(metrics, 0);
    expect(rows).toHaveLength(1);
    expect(rows[0].body).toEqual({ meta: {}, metrics: [{ name: 'x' }] });
    expect(rows[0].time).toBe('');
  });
  it('handles an empty answer', () => {
    expect(rowsOf({ metadata: { name: 'p' }, signal: 'traces' }, 0)).toEqual([]);
  });
});

describe('append', () => {
  it('keeps the newest rows of the window', () => {
    const rows = rowsOf(logs, 0);
    expect(append(rows.slice(0, 2), rows.slice(2), 2).map((r) => r.seq)).toEqual([1, 2]);
  });
});

describe('search', () => {
  const rows = rowsOf(logs, 0);
  it.each([
    { q: '', want: [0, 1, 2] },
    { q: 'second', want: [1] },
    { q: 'host', want: [0] },
    { q: 'app warn', want: [1] },
    { q: 'dummy.0', want: [0] },
    { q: 'nothing', want: [] },
  ])('"$q"', ({ q, want }) => expect(search(rows, q).map((r) => r.seq)).toEqual(want));
});

describe('page', () => {
  const rows = rowsOf(logs, 0);
  it.each([
    { p: 0, n: 2, want: [2, 1], pages: 2 },
    { p: 1, n: 2, want: [0], pages: 2 },
    { p: 5, n: 2, want: [0], pages: 2 },
    { p: 0, n: 25, want: [2, 1, 0], pages: 1 },
  ])('page $p of $n', ({ p, n, want, pages }) => {
    const got = page(rows, p, n);
    expect(got.rows.map((r) => r.seq)).toEqual(want);
    expect(got.pages).toBe(pages);
  });
  it('has one empty page without rows', () => {
    expect(page([], 0, 10)).toEqual({ rows: [], pages: 1, page: 0 });
  });
});

describe('nextFrom', () => {
  const tap = (t: Partial<PipelineTap>): PipelineTap => ({ metadata: { name: 'p' }, signal: 'logs', ...t });
  it.each([
    { name: 'first read', prev: undefined, t: tap({ startID: 1, endID: 5, nextID: 6, chunks: [{}] }), want: 6 },
    { name: 'reads on', prev: 6, t: tap({ endID: 9, nextID: 10, chunks: [{}] }), want: 10 },
    { name: 'nothing new', prev: 10, t: tap({ endID: 9, nextID: 10 }), want: 10 },
    { name: 'no nextID keeps the place', prev: 10, t: tap({ endID: 9 }), want: 10 },
    { name: 'exporter restarted', prev: 10, t: tap({ startID: 1, endID: 2, nextID: 10 }), want: undefined },
    { name: 'restarted, still empty', prev: 10, t: tap({}), want: undefined },
  ])('$name', ({ prev, t, want }) => expect(nextFrom(prev, t)).toBe(want));
});
