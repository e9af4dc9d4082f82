import { useEffect, useState } from 'preact/hooks';
import { ApiError, mergePatch, resourcePath } from '../api';
import { ConfigEditor } from '../components/ConfigEditor';
import { confirmDelete, Empty, ErrorNotice, Field, Notice, Phase, Tabs, useCan } from '../components/common';
import { useDryRun } from '../dryrun';
import { age } from '../format';
import { useLiveList, useLiveObject, useNow } from '../live';
import { navigate, pipelineHref } from '../route';
import type { KubeEvent, Pipeline } from '../types';
import { MetricsPanel } from './Metrics';
import { VivoPanel } from './Vivo';

const tabs = [
  { id: 'overview', label: 'Overview' },
  { id: 'config', label: 'Config' },
  { id: 'metrics', label: 'Metrics' },
  { id: 'vivo', label: 'Vivo' },
  { id: 'events', label: 'Events' },
];

export function PipelinePage({ namespace, name, tab }: { namespace: string; name: string; tab: string }) {
  const { object: p, loading, error } = useLiveObject<Pipeline>(resourcePath('pipelines', namespace), name);
  const canEdit = useCan('patch', 'pipelines', namespace);
  const current = tabs.some((t) => t.id === tab) ? tab : 'overview';
  return (
    <section aria-labelledby="pipeline-title">
      <p class="crumbs">
        <a href="#/pipelines">Pipelines</a> / {namespace}
      </p>
      <div class="page-head">
        <h1 id="pipeline-title">{name}</h1>
        {p && <Phase phase={p.status?.phase ?? 'New'} />}
      </div>
      <ErrorNotice error={error} doing={`read pipelines in namespace ${namespace}`} />
      {!p && !loading && !error && <Empty>Pipeline {name} does not exist (any more).</Empty>}
      {canEdit === false && p && <Notice kind="readonly">Read only: your account may view this pipeline but not change it.</Notice>}
      {p && (
        <>
          <Tabs tabs={tabs} current={current} label="Pipeline" onSelect={(id) => navigate(pipelineHref(namespace, name, id))} />
          <div role="tabpanel" id={`panel-${current}`} aria-labelledby={`tab-${current}`} class="panel">
            {current === 'overview' && <Overview p={p} canEdit={!!canEdit} />}
            {current === 'config' && <ConfigTab p={p} canEdit={!!canEdit} />}
            {current === 'metrics' && <MetricsPanel path={resourcePath('pipelines', namespace, name) + '/metrics'} />}
            {current === 'vivo' && <VivoPanel namespace={namespace} name={name} />}
            {current === 'events' && <Events namespace={namespace} name={name} />}
          </div>
        </>
      )}
    </section>
  );
}

function Overview({ p, canEdit }: { p: Pipeline; canEdit: boolean }) {
  const ns = p.metadata.namespace!;
  const now = useNow();
  const [error, setError] = useState<unknown>(null);
  const remove = async () => {
    if (await confirmDelete(`Delete pipeline ${p.metadata.name}? Its workloads or processes are removed.`, 'pipelines', ns, p.metadata.name, setError)) {
      navigate('#/pipelines');
    }
  };
  const daemon = p.spec.kind === 'DaemonSet';
  return (
    <div class="overview">
      <div class="cards">
        <dl class="card props">
          <dt>Core instance</dt>
          <dd>{p.spec.coreInstance}</dd>
          <dt>Kind</dt>
          <dd>{p.spec.kind ?? 'Deployment'}</dd>
          <dt>Replicas</dt>
          <dd data-testid="replicas">
            {p.status?.readyReplicas ?? 0} ready of {daemon ? (p.status?.replicas ?? 0) : (p.spec.replicas ?? 1)}
          </dd>
          <dt>Resource profile</dt>
          <dd>{p.spec.resourceProfile ?? 'best-effort-low-resource'}</dd>
          <dt>Deployment strategy</dt>
          <dd>{p.spec.deploymentStrategy ?? 'RollingUpdate'}</dd>
          <dt>Secrets</dt>
          <dd>{(p.spec.secrets ?? []).join(', ') || '—'}</dd>
          <dt>Config revision</dt>
          <dd>
            <code>{p.status?.configRevision?.slice(0, 12) || '—'}</code>
          </dd>
          <dt>Created</dt>
          <dd>{age(p.metadata.creationTimestamp, now)} ago</dd>
        </dl>
        {!daemon && <Scale p={p} canEdit={canEdit} />}
      </div>
      <h2>Conditions</h2>
      {(p.status?.conditions ?? []).length === 0 ? (
        <Empty>No conditions reported yet.</Empty>
      ) : (
        <table class="list" data-testid="conditions">
          <caption class="sr-only">Conditions</caption>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Reason</th>
              <th scope="col">Message</th>
              <th scope="col">Since</th>
            </tr>
          </thead>
          <tbody>
            {p.status!.conditions!.map((c) => (
              <tr key={c.type}>
                <th scope="row">{c.type}</th>
                <td>
                  <span class={`badge badge-${c.status === 'True' ? 'ok' : c.status === 'False' ? 'bad' : 'muted'}`}>{c.status}</span>
                </td>
                <td>{c.reason}</td>
                <td class="wrap">{c.message}</td>
                <td>{age(c.lastTransitionTime, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Ports</h2>
      {(p.status?.ports ?? []).length === 0 ? (
        <Empty>The pipeline listens on no port.</Empty>
      ) : (
        <table class="list" data-testid="ports">
          <caption class="sr-only">Ports</caption>
          <thead>
            <tr>
              <th scope="col">Port</th>
              <th scope="col">Protocol</th>
              <th scope="col">Plugin</th>
              <th scope="col">Service port</th>
              <th scope="col">Endpoint</th>
            </tr>
          </thead>
          <tbody>
            {p.status!.ports!.map((pt) => (
              <tr key={`${pt.protocol}-${pt.port}`}>
                <th scope="row">{pt.port}</th>
                <td>{pt.protocol}</td>
                <td>{pt.plugin ?? '—'}</td>
                <td>{pt.servicePort ?? '—'}</td>
                <td>
                  <code>{pt.endpoint ?? '—'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canEdit && (
        <div class="danger-zone">
          <ErrorNotice error={error} doing="delete this pipeline" />
          <button type="button" class="danger" onClick={remove}>
            Delete pipeline
          </button>
        </div>
      )}
    </div>
  );
}

function Scale({ p, canEdit }: { p: Pipeline; canEdit: boolean }) {
  const [replicas, setReplicas] = useState(String(p.spec.replicas ?? 1));
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  useEffect(() => setReplicas(String(p.spec.replicas ?? 1)), [p.spec.replicas]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone('');
    try {
      await mergePatch(resourcePath('pipelines', p.metadata.namespace!, p.metadata.name) + '/scale', { spec: { replicas: Number(replicas) } });
      setDone(`Scaled to ${replicas}.`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card scale" onSubmit={submit} aria-labelledby="scale-title">
      <h2 id="scale-title">Scale</h2>
      <Field id="replicas" label="Replicas" hint="0 stops the pipeline.">
        <input id="replicas" type="number" min={0} max={1000} value={replicas} disabled={!canEdit} aria-describedby="replicas-hint" onInput={(e) => setReplicas((e.target as HTMLInputElement).value)} />
      </Field>
      <button type="submit" class="primary" disabled={!canEdit || replicas === String(p.spec.replicas ?? 1)}>
        Scale
      </button>
      <ErrorNotice error={error} doing="scale this pipeline" />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </form>
  );
}

function ConfigTab({ p, canEdit }: { p: Pipeline; canEdit: boolean }) {
  const ns = p.metadata.namespace!;
  const path = resourcePath('pipelines', ns, p.metadata.name);
  const [config, setConfig] = useState(p.spec.config);
  const [profile, setProfile] = useState(p.spec.resourceProfile ?? '');
  const [strategy, setStrategy] = useState(p.spec.deploymentStrategy ?? 'RollingUpdate');
  const [secrets, setSecrets] = useState((p.spec.secrets ?? []).join(', '));
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState('');
  // The spec's generation when editing started: status writes by the data plane change the
  // resource version but not the generation, and must not make a save conflict.
  const [baseGen, setBaseGen] = useState(p.metadata.generation);
  const patch = () => ({
    spec: {
      config,
      resourceProfile: profile || null,
      deploymentStrategy: strategy,
      secrets: secrets.split(',').map((s) => s.trim()).filter(Boolean),
    },
  });
  const dirty =
    config !== p.spec.config ||
    profile !== (p.spec.resourceProfile ?? '') ||
    strategy !== (p.spec.deploymentStrategy ?? 'RollingUpdate') ||
    secrets !== (p.spec.secrets ?? []).join(', ');
  const key = JSON.stringify(patch());
  const { problems, checking, error, setProblems } = useDryRun(key, canEdit && dirty ? () => mergePatch(path, patch(), { dryRun: true }) : null);
  const changedElsewhere = p.metadata.generation !== baseGen && dirty;
  const save = async (e: Event) => {
    e.preventDefault();
    setSaveError(null);
    setSaved('');
    try {
      if (changedElsewhere) throw new ApiError(409, { code: 409, reason: 'Conflict', message: 'Someone changed this pipeline since you started editing: load their version first.' });
      // The current resource version (the spec is still the one edited) makes the save fail with
      // 409 if someone changes the pipeline in between.
      const out = await mergePatch<Pipeline>(path, { metadata: { resourceVersion: p.metadata.resourceVersion }, ...patch() });
      setBaseGen(out.metadata.generation);
      setProblems([]);
      setSaved('Saved. The data plane rolls it out.');
    } catch (err) {
      setSaveError(err);
    }
  };
  const reload = () => {
    setConfig(p.spec.config);
    setProfile(p.spec.resourceProfile ?? '');
    setStrategy(p.spec.deploymentStrategy ?? 'RollingUpdate');
    setSecrets((p.spec.secrets ?? []).join(', '));
    setBaseGen(p.metadata.generation);
    setSaveError(null);
  };
  return (
    <form onSubmit={save} aria-label="Edit pipeline">
      <div class="form-grid">
        <Field id="profile" label="Resource profile">
          <input id="profile" value={profile} disabled={!canEdit} placeholder="best-effort-low-resource" onInput={(e) => setProfile((e.target as HTMLInputElement).value)} />
        </Field>
        <Field id="strategy" label="Deployment strategy">
          <select id="strategy" value={strategy} disabled={!canEdit} onChange={(e) => setStrategy((e.target as HTMLSelectElement).value)}>
            <option>RollingUpdate</option>
            <option>Recreate</option>
            <option>HotReload</option>
          </select>
        </Field>
        <Field id="secrets" label="Secrets" hint="PipelineSecret names, comma-separated">
          <input id="secrets" value={secrets} disabled={!canEdit} aria-describedby="secrets-hint" onInput={(e) => setSecrets((e.target as HTMLInputElement).value)} />
        </Field>
      </div>
      <label for="config" class="editor-label">
        Fluent Bit config ({p.spec.configFormat || 'format inferred'})
      </label>
      <ConfigEditor id="config" value={config} onInput={setConfig} problems={problems} readOnly={!canEdit} checking={checking} />
      <ErrorNotice error={error} doing="edit this pipeline" />
      {changedElsewhere && (
        <Notice kind="warn">
          Someone changed this pipeline since you opened it.{' '}
          <button type="button" class="link" onClick={reload}>
            Load their version
          </button>{' '}
          (your edits are lost).
        </Notice>
      )}
      <ErrorNotice error={saveError} doing="edit this pipeline" />
      {saved && (
        <p class="ok" role="status">
          {saved}
        </p>
      )}
      {canEdit && (
        <div class="actions">
          <button type="submit" class="primary" disabled={!dirty || problems.length > 0 || checking}>
            Save
          </button>
          <button type="button" disabled={!dirty} onClick={reload}>
            Discard changes
          </button>
        </div>
      )}
    </form>
  );
}

function Events({ namespace, name }: { namespace: string; name: string }) {
  const live = useLiveList<KubeEvent>(resourcePath('events', namespace, undefined, '/k8s/api/v1'), {
    fieldSelector: `involvedObject.name=${name},involvedObject.kind=Pipeline`,
  });
  const now = useNow();
  const when = (e: KubeEvent) => e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  const events = live.items.slice().sort((a, b) => Date.parse(when(b) ?? '') - Date.parse(when(a) ?? ''));
  return (
    <>
      <ErrorNotice error={live.error} doing={`read events in namespace ${namespace}`} />
      {!live.error && events.length === 0 && !live.loading && <Empty>No events.</Empty>}
      {events.length > 0 && (
        <table class="list" data-testid="events">
          <caption class="sr-only">Events, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Reason</th>
              <th scope="col">Age</th>
              <th scope="col">From</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.metadata.uid}>
                <td>
                  <span class={`badge badge-${e.type === 'Warning' ? 'bad' : 'muted'}`}>{e.type}</span>
                </td>
                <th scope="row">{e.reason}</th>
                <td>
                  {age(when(e), now)}
                  {(e.count ?? 1) > 1 ? ` (×${e.count})` : ''}
                </td>
                <td>{e.source?.component ?? e.reportingComponent}</td>
                <td class="wrap">{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
