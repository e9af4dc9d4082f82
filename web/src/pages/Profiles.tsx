import { useEffect, useState } from 'preact/hooks';
import { get, post, resourcePath } from '../api';
import { useNamespace } from '../app';
import { confirmDelete, Empty, ErrorNotice, Field, useCan } from '../components/common';
import { useDryRun } from '../dryrun';
import { useLiveList } from '../live';
import type { ResourceProfile } from '../types';

// Built-in profiles exist in every namespace; they are read by name, not listed.
const builtIn = ['best-effort-low-resource', 'high-performance-optimal-throughput', 'high-performance-guaranteed-delivery'];

const example = {
  storageMaxChunksUp: 128,
  storageBacklogMemLimit: '50M',
  cpuBufferWorkers: 2,
  resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
};

export function ProfilesPage() {
  const { namespace } = useNamespace();
  const live = useLiveList<ResourceProfile>(resourcePath('resourceprofiles', namespace));
  const [builtins, setBuiltins] = useState<ResourceProfile[]>([]);
  const canCreate = useCan('create', 'resourceprofiles', namespace);
  const canDelete = useCan('delete', 'resourceprofiles', namespace);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!namespace) return setBuiltins([]);
    Promise.all(builtIn.map((n) => get<ResourceProfile>(resourcePath('resourceprofiles', namespace, n)).catch(() => null))).then((l) =>
      setBuiltins(l.filter((p): p is ResourceProfile => !!p)),
    );
  }, [namespace]);
  const listed = live.items.filter((p) => !builtIn.includes(p.metadata.name));
  const all = [...builtins.map((p) => ({ p, builtIn: true })), ...listed.map((p) => ({ p, builtIn: false }))];
  const remove = (p: ResourceProfile) =>
    confirmDelete(`Delete resource profile ${p.metadata.name}?`, 'resourceprofiles', p.metadata.namespace!, p.metadata.name, setError);
  return (
    <section aria-labelledby="profiles-title">
      <div class="page-head">
        <h1 id="profiles-title">Resource profiles</h1>
        {canCreate && namespace && (
          <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
            New profile
          </button>
        )}
      </div>
      {creating && <NewProfile namespace={namespace} onDone={() => setCreating(false)} />}
      <ErrorNotice error={live.error} doing={`list resource profiles in ${namespace || 'every namespace'}`} />
      <ErrorNotice error={error} doing="delete resource profiles here" />
      {all.length === 0 && !live.loading && !live.error && <Empty>No resource profiles.</Empty>}
      {all.length > 0 && (
        <table class="list" data-testid="profiles">
          <caption class="sr-only">Resource profiles</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Chunks up</th>
              <th scope="col">Backlog memory</th>
              <th scope="col">Volume</th>
              <th scope="col">Workers</th>
              <th scope="col">Requests</th>
              <th scope="col">Limits</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {all.map(({ p, builtIn }) => {
              const s = p.spec as Record<string, any>;
              const res = (k: string) =>
                Object.entries((s.resources?.[k] ?? {}) as Record<string, string>)
                  .map(([r, v]) => `${r} ${v}`)
                  .join(', ') || '—';
              return (
                <tr key={p.metadata.name}>
                  <th scope="row">
                    {p.metadata.name} {builtIn && <span class="tag">built-in</span>}
                  </th>
                  <td>{s.storageMaxChunksUp ?? '—'}</td>
                  <td>{s.storageBacklogMemLimit ?? '—'}</td>
                  <td>{s.storageVolumeSize ?? 'memory only'}</td>
                  <td>{s.cpuBufferWorkers ?? '—'}</td>
                  <td>{res('requests')}</td>
                  <td>{res('limits')}</td>
                  <td>
                    {!builtIn && canDelete && (
                      <button type="button" class="danger small" onClick={() => remove(p)} aria-label={`Delete resource profile ${p.metadata.name}`}>
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function NewProfile({ namespace, onDone }: { namespace: string; onDone: () => void }) {
  const [name, setName] = useState('');
  const [spec, setSpec] = useState(JSON.stringify(example, null, 2));
  const [error, setError] = useState<unknown>(null);
  const parsed = (() => {
    try {
      return { spec: JSON.parse(spec) as Record<string, unknown>, err: '' };
    } catch (e) {
      return { spec: null, err: (e as Error).message };
    }
  })();
  const object = () => ({ apiVersion: 'core.calyptia.com/v1', kind: 'ResourceProfile', metadata: { name: name || 'draft' }, spec: parsed.spec });
  const { problems, checking } = useDryRun(JSON.stringify(object()), parsed.spec ? () => post(resourcePath('resourceprofiles', namespace), object(), { dryRun: true }) : null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await post(resourcePath('resourceprofiles', namespace), object());
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-label="New resource profile">
      <Field id="rp-name" label="Name">
        <input id="rp-name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </Field>
      <Field id="rp-spec" label="Spec (JSON)" hint="storageMaxChunksUp, storageSyncFull, storageBacklogMemLimit, storageVolumeSize, storageMaxChunksPause, cpuBufferWorkers, resources">
        <textarea id="rp-spec" rows={10} class="mono" value={spec} aria-describedby="rp-spec-hint rp-problems" onInput={(e) => setSpec((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <div id="rp-problems" aria-live="polite">
        {parsed.err && <p class="problem">Not JSON: {parsed.err}</p>}
        {checking && <p class="checking">Checking…</p>}
        {problems.map((p, i) => (
          <p key={i} class="problem">
            <code>{p.field}</code> {p.message}
          </p>
        ))}
      </div>
      <ErrorNotice error={error} doing="create resource profiles here" />
      <div class="actions">
        <button type="submit" class="primary" disabled={!!parsed.err || problems.length > 0 || checking}>
          Create
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
