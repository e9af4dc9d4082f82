import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { post, resourcePath } from '../api';
import { useNamespace } from '../app';
import { confirmDelete, Empty, ErrorNotice, Field, Phase, useCan } from '../components/common';
import { age } from '../format';
import { useLiveList, useNow } from '../live';
import type { CoreInstance } from '../types';
import { MetricsPanel } from './Metrics';

export function CoreInstancesPage() {
  const { namespace } = useNamespace();
  const live = useLiveList<CoreInstance>(resourcePath('coreinstances', namespace));
  const [env, setEnv] = useState('');
  const [tag, setTag] = useState('');
  const [creating, setCreating] = useState(false);
  const canCreate = useCan('create', 'coreinstances', namespace);
  const canDelete = useCan('delete', 'coreinstances', namespace);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState('');
  const now = useNow();
  const envs = [...new Set(live.items.map((c) => c.spec.environment ?? '').filter(Boolean))].sort();
  const shown = live.items.filter((c) => (!env || c.spec.environment === env) && (!tag || (c.spec.tags ?? []).some((t) => t.includes(tag))));
  const remove = (c: CoreInstance) =>
    confirmDelete(`Delete core instance ${c.metadata.name}? Its pipelines stay, unassigned.`, 'coreinstances', c.metadata.namespace!, c.metadata.name, setError);
  return (
    <section aria-labelledby="ci-title">
      <div class="page-head">
        <h1 id="ci-title">Core instances</h1>
        {canCreate && namespace && (
          <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
            New core instance
          </button>
        )}
      </div>
      {creating && <NewCoreInstance namespace={namespace} onDone={() => setCreating(false)} />}
      <div class="filters">
        <label>
          Environment{' '}
          <select value={env} onChange={(e) => setEnv((e.target as HTMLSelectElement).value)}>
            <option value="">All</option>
            {envs.map((e) => (
              <option key={e}>{e}</option>
            ))}
          </select>
        </label>
        <label>
          Tag <input value={tag} onInput={(e) => setTag((e.target as HTMLInputElement).value)} placeholder="any" />
        </label>
        <span class="count" aria-live="polite">
          {shown.length} of {live.items.length}
        </span>
      </div>
      <ErrorNotice error={live.error} doing={`list core instances in ${namespace || 'every namespace'}`} />
      <ErrorNotice error={error} doing="delete core instances here" />
      {!live.error && !live.loading && shown.length === 0 ? (
        <Empty>No core instances{namespace ? ` in namespace ${namespace}` : ''}.</Empty>
      ) : (
        !live.error && (
          <table class="list" data-testid="coreinstances">
            <caption class="sr-only">Core instances</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                {!namespace && <th scope="col">Namespace</th>}
                <th scope="col">Environment</th>
                <th scope="col">Mode</th>
                <th scope="col">Status</th>
                <th scope="col">Last heartbeat</th>
                <th scope="col">Pipelines</th>
                <th scope="col">Tags</th>
                <th scope="col">Versions</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((c) => (
                <Fragment key={c.metadata.uid}>
                <tr key={c.metadata.uid}>
                  <th scope="row">{c.metadata.name}</th>
                  {!namespace && <td>{c.metadata.namespace}</td>}
                  <td>{c.spec.environment || '—'}</td>
                  <td>{c.spec.mode ?? 'Kubernetes'}</td>
                  <td>
                    <Phase phase={c.status?.phase ?? 'Waiting'} />
                  </td>
                  <td>{c.status?.lastHeartbeatTime ? `${age(c.status.lastHeartbeatTime, now)} ago` : 'never'}</td>
                  <td>{c.status?.pipelines ?? 0}</td>
                  <td>
                    {(c.spec.tags ?? []).map((t) => (
                      <span key={t} class="tag">
                        {t}
                      </span>
                    ))}
                  </td>
                  <td class="muted">
                    {c.status?.agentVersion ? `agent ${c.status.agentVersion}` : ''}
                    {c.status?.fluentBitVersion ? `, Fluent Bit ${c.status.fluentBitVersion}` : ''}
                  </td>
                  <td class="row-actions">
                    <button
                      type="button"
                      class="small"
                      aria-expanded={open === c.metadata.uid}
                      aria-label={`Metrics of core instance ${c.metadata.name}`}
                      onClick={() => setOpen(open === c.metadata.uid ? '' : c.metadata.uid!)}
                    >
                      Metrics
                    </button>
                    {canDelete && (
                      <button type="button" class="danger small" onClick={() => remove(c)} aria-label={`Delete core instance ${c.metadata.name}`}>
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
                {open === c.metadata.uid && (
                  <tr key={`${c.metadata.uid}-metrics`}>
                    <td colSpan={10}>
                      <MetricsPanel path={resourcePath('coreinstances', c.metadata.namespace!, c.metadata.name) + '/metrics'} />
                    </td>
                  </tr>
                )}
                </Fragment>
              ))}
            </tbody>
          </table>
        )
      )}
    </section>
  );
}

function NewCoreInstance({ namespace, onDone }: { namespace: string; onDone: () => void }) {
  const [name, setName] = useState('');
  const [mode, setMode] = useState('Kubernetes');
  const [environment, setEnvironment] = useState('');
  const [tags, setTags] = useState('');
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await post(resourcePath('coreinstances', namespace), {
        apiVersion: 'core.calyptia.com/v1',
        kind: 'CoreInstance',
        metadata: { name },
        spec: { mode, environment: environment || undefined, tags: tags.split(',').map((t) => t.trim()).filter(Boolean) },
      });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card form-grid" onSubmit={submit} aria-label="New core instance">
      <Field id="ci-name" label="Name">
        <input id="ci-name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </Field>
      <Field id="ci-mode" label="Mode">
        <select id="ci-mode" value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value)}>
          <option>Kubernetes</option>
          <option>External</option>
        </select>
      </Field>
      <Field id="ci-env" label="Environment">
        <input id="ci-env" value={environment} onInput={(e) => setEnvironment((e.target as HTMLInputElement).value)} />
      </Field>
      <Field id="ci-tags" label="Tags" hint="Comma-separated">
        <input id="ci-tags" value={tags} onInput={(e) => setTags((e.target as HTMLInputElement).value)} aria-describedby="ci-tags-hint" />
      </Field>
      <ErrorNotice error={error} doing="create core instances here" />
      <div class="actions">
        <button type="submit" class="primary">
          Create
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
