import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { b64encode, mergePatch, post, resourcePath } from '../api';
import { useNamespace } from '../app';
import { confirmDelete, Empty, ErrorNotice, Field, Notice, useCan } from '../components/common';
import { age } from '../format';
import { useLiveList, useNow } from '../live';
import type { PipelineSecret } from '../types';

// Secrets shows keys only: values can be set or replaced, never read back.
export function SecretsPage() {
  const { namespace } = useNamespace();
  const live = useLiveList<PipelineSecret>(resourcePath('pipelinesecrets', namespace));
  const canCreate = useCan('create', 'pipelinesecrets', namespace);
  const canEdit = useCan('patch', 'pipelinesecrets', namespace);
  const [editing, setEditing] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const now = useNow();
  const remove = (s: PipelineSecret) =>
    confirmDelete(`Delete secret ${s.metadata.name}?`, 'pipelinesecrets', s.metadata.namespace!, s.metadata.name, setError);
  return (
    <section aria-labelledby="secrets-title">
      <div class="page-head">
        <h1 id="secrets-title">Pipeline secrets</h1>
        {canCreate && namespace && (
          <button type="button" class="primary" onClick={() => setEditing(editing === '' ? null : '')} aria-expanded={editing === ''}>
            New secret
          </button>
        )}
      </div>
      <p class="muted">Configs use their keys as {'{{ secrets.KEY }}'}. Values are write-only here: set or replace them, they are never shown.</p>
      {editing === '' && <SecretForm namespace={namespace} onDone={() => setEditing(null)} />}
      <ErrorNotice error={live.error} doing={`list pipeline secrets in ${namespace || 'every namespace'}`} />
      <ErrorNotice error={error} doing="delete secrets here" />
      {!live.error && !live.loading && live.items.length === 0 && <Empty>No pipeline secrets.</Empty>}
      {live.items.length > 0 && (
        <table class="list" data-testid="secrets">
          <caption class="sr-only">Pipeline secrets</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              {!namespace && <th scope="col">Namespace</th>}
              <th scope="col">Keys</th>
              <th scope="col">Age</th>
              {canEdit && (
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {live.items.map((s) => (
              <Fragment key={s.metadata.uid}>
                <tr key={s.metadata.uid}>
                  <th scope="row">{s.metadata.name}</th>
                  {!namespace && <td>{s.metadata.namespace}</td>}
                  <td>
                    {Object.keys(s.data ?? {})
                      .sort()
                      .map((k) => (
                        <code key={k} class="tag">
                          {k}
                        </code>
                      ))}
                  </td>
                  <td>{age(s.metadata.creationTimestamp, now)}</td>
                  {canEdit && (
                    <td class="row-actions">
                      <button type="button" class="small" onClick={() => setEditing(editing === s.metadata.name ? null : s.metadata.name)} aria-expanded={editing === s.metadata.name}>
                        Set values
                      </button>
                      <button type="button" class="danger small" onClick={() => remove(s)} aria-label={`Delete secret ${s.metadata.name}`}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
                {editing === s.metadata.name && (
                  <tr key={`${s.metadata.uid}-edit`}>
                    <td colSpan={5}>
                      <SecretForm namespace={s.metadata.namespace!} secret={s} onDone={() => setEditing(null)} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function SecretForm({ namespace, secret, onDone }: { namespace: string; secret?: PipelineSecret; onDone: () => void }) {
  const [name, setName] = useState(secret?.metadata.name ?? '');
  const [rows, setRows] = useState<{ key: string; value: string }[]>([{ key: '', value: '' }]);
  const [removed, setRemoved] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const set = (i: number, f: 'key' | 'value', v: string) => setRows(rows.map((r, j) => (j === i ? { ...r, [f]: v } : r)));
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const data: Record<string, string | null> = {};
    for (const r of rows) if (r.key) data[r.key] = b64encode(r.value);
    for (const k of removed) data[k] = null;
    try {
      if (secret) await mergePatch(resourcePath('pipelinesecrets', namespace, secret.metadata.name), { data });
      else await post(resourcePath('pipelinesecrets', namespace), { apiVersion: 'core.calyptia.com/v1', kind: 'PipelineSecret', metadata: { name }, data });
      setDone('Saved.');
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  const existing = Object.keys(secret?.data ?? {}).sort();
  const prefix = secret ? `s-${secret.metadata.name}` : 'new-secret';
  return (
    <form class="card" onSubmit={submit} aria-label={secret ? `Set values of ${secret.metadata.name}` : 'New secret'}>
      {!secret && (
        <Field id={`${prefix}-name`} label="Name">
          <input id={`${prefix}-name`} required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </Field>
      )}
      {existing.length > 0 && (
        <fieldset>
          <legend>Keys to remove</legend>
          {existing.map((k) => (
            <label key={k} class="check">
              <input type="checkbox" checked={removed.includes(k)} onChange={(e) => setRemoved((e.target as HTMLInputElement).checked ? [...removed, k] : removed.filter((x) => x !== k))} /> {k}
            </label>
          ))}
        </fieldset>
      )}
      <fieldset>
        <legend>{secret ? 'Set or replace values' : 'Values'}</legend>
        {rows.map((r, i) => (
          <div class="kv" key={i}>
            <Field id={`${prefix}-key-${i}`} label="Key">
              <input id={`${prefix}-key-${i}`} value={r.key} pattern="[-._a-zA-Z0-9]+" list={`${prefix}-keys`} onInput={(e) => set(i, 'key', (e.target as HTMLInputElement).value)} />
            </Field>
            <Field id={`${prefix}-value-${i}`} label="Value">
              <input id={`${prefix}-value-${i}`} type="password" autocomplete="new-password" value={r.value} onInput={(e) => set(i, 'value', (e.target as HTMLInputElement).value)} />
            </Field>
          </div>
        ))}
        <datalist id={`${prefix}-keys`}>
          {existing.map((k) => (
            <option key={k} value={k} />
          ))}
        </datalist>
        <button type="button" class="small" onClick={() => setRows([...rows, { key: '', value: '' }])}>
          Add a key
        </button>
      </fieldset>
      <ErrorNotice error={error} doing="change secrets here" />
      {done && <Notice kind="ok">{done}</Notice>}
      <div class="actions">
        <button type="submit" class="primary">
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
