// Calls to kube-apiserver through core (/k8s/...), with the CSRF token on writes, and errors as
// Kubernetes Status objects whoever refused.

export const GROUP = '/k8s/apis/core.calyptia.com/v1';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface Status {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
  details?: { name?: string; kind?: string; causes?: StatusCause[] };
}

export class ApiError extends Error {
  readonly code: number;
  readonly status: Status;
  constructor(code: number, status: Status) {
    super(status.message || `HTTP ${code}`);
    this.code = code;
    this.status = status;
  }
  get forbidden(): boolean {
    return this.code === 403;
  }
  get unauthorized(): boolean {
    return this.code === 401;
  }
  get notFound(): boolean {
    return this.code === 404;
  }
}

export function csrfToken(cookies: string = typeof document === 'undefined' ? '' : document.cookie): string {
  for (const part of cookies.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'core_csrf') return v.join('=');
  }
  return '';
}

// Listeners told when a call answers 401: the session ended, show the login page.
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export async function toError(resp: Response): Promise<ApiError> {
  let status: Status = { code: resp.status, message: `${resp.status} ${resp.statusText}` };
  try {
    const body = await resp.json();
    if (body && typeof body === 'object') status = body as Status;
  } catch {
    // not JSON: keep the HTTP status
  }
  return new ApiError(resp.status, status);
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  query?: Record<string, string | number | undefined>;
}

export function withQuery(path: string, query?: Record<string, string | number | undefined>): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  if (!s) return path;
  return path + (path.includes('?') ? '&' : '?') + s;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const query = { ...(opts.query ?? {}), ...(opts.dryRun ? { dryRun: 'All' } : {}) };
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType ?? 'application/json';
  }
  const resp = await fetch(withQuery(path, query), {
    method,
    headers,
    body,
    signal: opts.signal,
    credentials: 'same-origin',
  });
  if (!resp.ok) {
    const err = await toError(resp);
    if (err.unauthorized) unauthorizedListeners.forEach((fn) => fn());
    throw err;
  }
  if (resp.status === 204) return undefined as T;
  return (await resp.json()) as T;
}

export const get = <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts);
export const del = <T>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, opts);
export const post = <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body });
export const mergePatch = <T>(path: string, body: unknown, opts?: RequestOptions) =>
  request<T>('PATCH', path, { ...opts, body, contentType: 'application/merge-patch+json' });

// Paths of namespaced objects; namespace '' means every namespace (lists only).
export function resourcePath(resource: string, namespace: string, name?: string, group = GROUP): string {
  let p = group;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${resource}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  return p;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

// parseWatchLines takes what arrived of a watch stream and returns the complete events in it
// and what is left of an unfinished line.
export function parseWatchLines<T>(buffer: string): { events: WatchEvent<T>[]; rest: string } {
  const events: WatchEvent<T>[] = [];
  let start = 0;
  for (;;) {
    const nl = buffer.indexOf('\n', start);
    if (nl < 0) break;
    const line = buffer.slice(start, nl).trim();
    start = nl + 1;
    if (line) events.push(JSON.parse(line) as WatchEvent<T>);
  }
  return { events, rest: buffer.slice(start) };
}

// watch streams a watch's events until the signal aborts or the server ends it.
export async function watch<T>(path: string, resourceVersion: string, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
  const resp = await fetch(withQuery(path, { watch: 1, resourceVersion, allowWatchBookmarks: 'true' }), {
    headers: { Accept: 'application/json' },
    signal,
    credentials: 'same-origin',
  });
  if (!resp.ok || !resp.body) throw await toError(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const { events, rest } = parseWatchLines<T>(buffer + value);
    buffer = rest;
    events.forEach(onEvent);
  }
}

export function b64encode(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return btoa(bin);
}
