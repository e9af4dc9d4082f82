import { useState } from 'preact/hooks';
import { resourcePath } from '../api';
import { useNamespace } from '../app';
import { Empty, ErrorNotice, Phase, useCan } from '../components/common';
import { age } from '../format';
import { useLiveList, useNow } from '../live';
import { pipelineHref } from '../route';
import type { Pipeline } from '../types';

const phases = ['New', 'Starting', 'Started', 'Scaling', 'Failed'];

export function PipelinesPage() {
  const { namespace } = useNamespace();
  const live = useLiveList<Pipeline>(resourcePath('pipelines', namespace));
  const [instance, setInstance] = useState('');
  const [phase, setPhase] = useState('');
  const canCreate = useCan('create', 'pipelines', namespace);
  const now = useNow();
  const instances = [...new Set(live.items.map((p) => p.spec.coreInstance))].sort();
  const shown = live.items.filter((p) => (!instance || p.spec.coreInstance === instance) && (!phase || (p.status?.phase ?? 'New') === phase));
  return (
    <section aria-labelledby="pipelines-title">
      <div class="page-head">
        <h1 id="pipelines-title">Pipelines</h1>
        {canCreate && (
          <a class="button primary" href="#/pipelines/new">
            New pipeline
          </a>
        )}
      </div>
      <div class="filters">
        <label>
          Core instance{' '}
          <select value={instance} onChange={(e) => setInstance((e.target as HTMLSelectElement).value)}>
            <option value="">All</option>
            {instances.map((i) => (
              <option key={i}>{i}</option>
            ))}
          </select>
        </label>
        <label>
          Status{' '}
          <select value={phase} onChange={(e) => setPhase((e.target as HTMLSelectElement).value)}>
            <option value="">All</option>
            {phases.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <span class="count" aria-live="polite">
          {shown.length} of {live.items.length}
        </span>
      </div>
      <ErrorNotice error={live.error} doing={`list pipelines in ${namespace || 'every namespace'}`} />
      {!live.error && !live.loading && shown.length === 0 ? (
        <Empty>No pipelines{namespace ? ` in namespace ${namespace}` : ''}.</Empty>
      ) : (
        !live.error && (
          <table class="list" data-testid="pipelines">
            <caption class="sr-only">Pipelines{namespace ? ` in namespace ${namespace}` : ''}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                {!namespace && <th scope="col">Namespace</th>}
                <th scope="col">Core instance</th>
                <th scope="col">Kind</th>
                <th scope="col">Replicas</th>
                <th scope="col">Status</th>
                <th scope="col">Age</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((p) => (
                <tr key={p.metadata.uid}>
                  <th scope="row">
                    <a href={pipelineHref(p.metadata.namespace!, p.metadata.name)}>{p.metadata.name}</a>
                  </th>
                  {!namespace && <td>{p.metadata.namespace}</td>}
                  <td>{p.spec.coreInstance}</td>
                  <td>{p.spec.kind ?? 'Deployment'}</td>
                  <td>
                    {p.status?.readyReplicas ?? 0}/{p.spec.kind === 'DaemonSet' ? (p.status?.replicas ?? 0) : (p.spec.replicas ?? 1)}
                  </td>
                  <td>
                    <Phase phase={p.status?.phase ?? 'New'} />
                  </td>
                  <td>{age(p.metadata.creationTimestamp, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
    </section>
  );
}
