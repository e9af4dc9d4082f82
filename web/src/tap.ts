import type { PipelineTap } from './types';

// One row of the Vivo view: a log record, or a metrics or traces chunk as Fluent Bit wrote it.
export interface TapRow {
  // seq orders rows as they arrived; keys stay stable when older rows fall out of the window.
  seq: number;
  time: string;
  tag: string;
  source: string;
  metadata: unknown;
  body: unknown;
  // text is what search looks in: tag, source, metadata and body as JSON.
  text: string;
}

// WINDOW is how many rows the view keeps; older ones fall out.
export const WINDOW = 1000;

// rowsOf flattens a tap answer into rows, numbered from seq.
export function rowsOf(tap: PipelineTap, seq: number): TapRow[] {
  const rows: TapRow[] = [];
  for (const c of tap.chunks ?? []) {
    const tag = c.tag ?? '';
    const source = c.sourceName ?? c.sourceType ?? '';
    if (c.records && c.records.length > 0) {
      for (const r of c.records) {
        rows.push(row(seq++, r.time, tag, source, r.metadata ?? null, r.record));
      }
    } else if (c.data !== undefined) {
      rows.push(row(seq++, '', tag, source, null, c.data));
    }
  }
  return rows;
}

function row(seq: number, time: string, tag: string, source: string, metadata: unknown, body: unknown): TapRow {
  const text = [tag, source, safeJSON(metadata), safeJSON(body)].join('\n').toLowerCase();
  return { seq, time, tag, source, metadata, body, text };
}

export function safeJSON(v: unknown): string {
  if (v === null || v === undefined) return '';
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

// append adds new rows at the end and keeps the newest WINDOW.
export function append(rows: TapRow[], more: TapRow[], window = WINDOW): TapRow[] {
  const all = rows.concat(more);
  return all.length > window ? all.slice(all.length - window) : all;
}

// search keeps the rows whose tag, source, metadata or body contain every word of query.
export function search(rows: TapRow[], query: string): TapRow[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return rows;
  return rows.filter((r) => words.every((w) => r.text.includes(w)));
}

// page returns page p (0 = newest) of size n, newest first, and the number of pages.
export function page(rows: TapRow[], p: number, n: number): { rows: TapRow[]; pages: number; page: number } {
  const pages = Math.max(1, Math.ceil(rows.length / n));
  const at = Math.min(Math.max(0, p), pages - 1);
  const newestFirst = rows.slice().reverse();
  return { rows: newestFirst.slice(at * n, at * n + n), pages, page: at };
}

// nextFrom is where the next read starts: the answer's nextID; or the oldest chunk again when
// the exporter's ids went back below where the view was (its Fluent Bit restarted), so that a
// restart does not leave the view waiting for ids that will not come.
export function nextFrom(prev: number | undefined, tap: PipelineTap): number | undefined {
  if (prev !== undefined && (tap.chunks ?? []).length === 0 && (tap.endID ?? 0) + 1 < prev) return undefined;
  return tap.nextID !== undefined && tap.nextID > 0 ? tap.nextID : prev;
}
