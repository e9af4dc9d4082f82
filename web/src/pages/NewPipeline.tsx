import { useState } from 'preact/hooks';
import { post, resourcePath } from '../api';
import { useNamespace } from '../app';
import { ConfigEditor } from '../components/ConfigEditor';
import { ErrorNotice, Field, Notice } from '../components/common';
import { useDryRun } from '../dryrun';
import { useLiveList } from '../live';
import { navigate, pipelineHref } from '../route';
import type { CoreInstance, Pipeline } from '../types';

const starter = `[INPUT]
    name  dummy
    tag   example

[OUTPUT]
    name  stdout
    match *
`;

export function NewPipelinePage() {
  const { namespace } = useNamespace();
  const instances = useLiveList<CoreInstance>(namespace ? resourcePath('coreinstances', namespace) : '');
  const [name, setName] = useState('');
  const [coreInstance, setCoreInstance] = useState('');
  const [kind, setKind] = useState('Deployment');
  const [replicas, setReplicas] = useState('1');
  const [profile, setProfile] = useState('');
  const [strategy, setStrategy] = useState('RollingUpdate');
  const [secrets, setSecrets] = useState('');
  const [config, setConfig] = useState(starter);
  const [error, setError] = useState<unknown>(null);
  const object = (): Pipeline => ({
    apiVersion: 'core.calyptia.com/v1',
    kind: 'Pipeline',
    metadata: { name: name || 'draft', namespace },
    spec: {
      coreInstance: coreInstance || instances.items[0]?.metadata.name || '',
      config,
      kind,
      replicas: kind === 'DaemonSet' ? undefined : Number(replicas),
      resourceProfile: profile || undefined,
      deploymentStrategy: strategy,
      secrets: secrets.split(',').map((s) => s.trim()).filter(Boolean),
    },
  });
  const key = JSON.stringify(object());
  const { problems, checking, error: checkError } = useDryRun(key, namespace ? () => post(resourcePath('pipelines', namespace), object(), { dryRun: true }) : null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const p = await post<Pipeline>(resourcePath('pipelines', namespace), object());
      navigate(pipelineHref(namespace, p.metadata.name));
    } catch (err) {
      setError(err);
    }
  };
  if (!namespace) return <Notice kind="warn">Choose a namespace (at the top) to create a pipeline in.</Notice>;
  return (
    <section aria-labelledby="new-title">
      <p class="crumbs">
        <a href="#/pipelines">Pipelines</a> / {namespace}
      </p>
      <h1 id="new-title">New pipeline</h1>
      <form onSubmit={submit} aria-labelledby="new-title">
        <div class="form-grid">
          <Field id="name" label="Name">
            <input id="name" required value={name} pattern="[a-z]([-a-z0-9]*[a-z0-9])?" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </Field>
          <Field id="core-instance" label="Core instance">
            <select id="core-instance" value={coreInstance || instances.items[0]?.metadata.name} onChange={(e) => setCoreInstance((e.target as HTMLSelectElement).value)}>
              {instances.items.map((c) => (
                <option key={c.metadata.name}>{c.metadata.name}</option>
              ))}
            </select>
          </Field>
          <Field id="kind" label="Kind">
            <select id="kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
              <option>Deployment</option>
              <option>DaemonSet</option>
              <option>StatefulSet</option>
            </select>
          </Field>
          {kind !== 'DaemonSet' && (
            <Field id="new-replicas" label="Replicas">
              <input id="new-replicas" type="number" min={0} value={replicas} onInput={(e) => setReplicas((e.target as HTMLInputElement).value)} />
            </Field>
          )}
          <Field id="new-profile" label="Resource profile">
            <input id="new-profile" value={profile} placeholder="best-effort-low-resource" onInput={(e) => setProfile((e.target as HTMLInputElement).value)} />
          </Field>
          <Field id="new-strategy" label="Deployment strategy">
            <select id="new-strategy" value={strategy} onChange={(e) => setStrategy((e.target as HTMLSelectElement).value)}>
              <option>RollingUpdate</option>
              <option>Recreate</option>
              <option>HotReload</option>
            </select>
          </Field>
          <Field id="new-secrets" label="Secrets" hint="PipelineSecret names, comma-separated">
            <input id="new-secrets" value={secrets} aria-describedby="new-secrets-hint" onInput={(e) => setSecrets((e.target as HTMLInputElement).value)} />
          </Field>
        </div>
        <label for="config" class="editor-label">
          Fluent Bit config (classic or YAML)
        </label>
        <ConfigEditor id="config" value={config} onInput={setConfig} problems={problems.filter((p) => p.field !== 'metadata.name' || name !== '')} checking={checking} />
        <ErrorNotice error={checkError} doing={`create pipelines in namespace ${namespace}`} />
        <ErrorNotice error={error} doing={`create pipelines in namespace ${namespace}`} />
        <div class="actions">
          <button type="submit" class="primary" disabled={checking || problems.length > 0 || !name}>
            Create pipeline
          </button>
          <a class="button" href="#/pipelines">
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}
