import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, post, resourcePath } from '../api';
import { describe } from '../problems';

// Notice tells about a problem or a refusal; refusals by RBAC read "Not allowed", never as a
// failure of the UI.
export function ErrorNotice({ error, doing }: { error: unknown; doing?: string }) {
  if (!error) return null;
  const d = describe(error, doing);
  return (
    <div class={`notice notice-${d.kind}`} role={d.kind === 'forbidden' ? 'status' : 'alert'} data-kind={d.kind}>
      {d.text}
    </div>
  );
}

export function Notice({ kind = 'info', children }: { kind?: string; children: ComponentChildren }) {
  return (
    <div class={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

const phaseClass: Record<string, string> = {
  Running: 'ok',
  Started: 'ok',
  Starting: 'warn',
  Scaling: 'warn',
  New: 'muted',
  Waiting: 'muted',
  Failed: 'bad',
  Unreachable: 'bad',
};

export function Phase({ phase }: { phase?: string }) {
  const p = phase || 'Unknown';
  return <span class={`badge badge-${phaseClass[p] ?? 'muted'}`}>{p}</span>;
}

// Tabs are a WAI-ARIA tab list: arrow keys, Home and End move between tabs.
export function Tabs({ tabs, current, label, onSelect }: { tabs: { id: string; label: string }[]; current: string; label: string; onSelect: (id: string) => void }) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const onKey = (e: KeyboardEvent, i: number) => {
    let j = i;
    if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = tabs.length - 1;
    else return;
    e.preventDefault();
    onSelect(tabs[j].id);
    refs.current[j]?.focus();
  };
  return (
    <div role="tablist" aria-label={label} class="tabs">
      {tabs.map((t, i) => (
        <button
          key={t.id}
          ref={(el) => {
            refs.current[i] = el;
          }}
          role="tab"
          id={`tab-${t.id}`}
          aria-selected={t.id === current}
          aria-controls={`panel-${t.id}`}
          tabIndex={t.id === current ? 0 : -1}
          class={t.id === current ? 'tab active' : 'tab'}
          onClick={() => onSelect(t.id)}
          onKeyDown={(e) => onKey(e as KeyboardEvent, i)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

// useCan asks kube-apiserver whether the caller may do verb on resource (SelfSubjectAccessReview),
// so that the UI offers only what RBAC allows. Undefined while asking.
export function useCan(verb: string, resource: string, namespace: string, subresource = '', group = 'core.calyptia.com'): boolean | undefined {
  const [can, setCan] = useState<boolean | undefined>(undefined);
  useEffect(() => {
    let live = true;
    setCan(undefined);
    post<{ status?: { allowed?: boolean } }>('/k8s/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb, resource, subresource, namespace, group } },
    })
      .then((r) => live && setCan(!!r.status?.allowed))
      .catch(() => live && setCan(false));
    return () => {
      live = false;
    };
  }, [verb, resource, namespace, subresource, group]);
  return can;
}

export function Field({ id, label, hint, children }: { id: string; label: string; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

// confirmDelete asks the question, then deletes the object; a failure goes to setError for the
// page's ErrorNotice. It says whether the object is gone.
export async function confirmDelete(question: string, resource: string, namespace: string, name: string, setError: (err: unknown) => void): Promise<boolean> {
  if (!confirm(question)) return false;
  setError(null);
  try {
    await del(resourcePath(resource, namespace, name));
    return true;
  } catch (err) {
    setError(err);
    return false;
  }
}
