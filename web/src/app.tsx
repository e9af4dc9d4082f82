import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { ApiError, get, onUnauthorized, post, type Status } from './api';
import { Field } from './components/common';
import type { List } from './types';
import { useRoute } from './route';
import { CoreInstancesPage } from './pages/CoreInstances';
import { PipelinesPage } from './pages/Pipelines';
import { PipelinePage } from './pages/Pipeline';
import { NewPipelinePage } from './pages/NewPipeline';
import { SecretsPage } from './pages/Secrets';
import { ProfilesPage } from './pages/Profiles';

export interface Session {
  mode: 'token' | 'proxy';
  username: string;
  groups?: string[];
}

// The namespace the lists show; '' is every namespace.
export const NamespaceContext = createContext<{ namespace: string; setNamespace: (ns: string) => void }>({
  namespace: 'default',
  setNamespace: () => {},
});
export const useNamespace = () => useContext(NamespaceContext);

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [namespace, setNs] = useState(() => localStorage.getItem('core.namespace') ?? 'default');
  const setNamespace = (ns: string) => {
    localStorage.setItem('core.namespace', ns);
    setNs(ns);
  };
  useEffect(() => {
    get<Session>('/auth/session')
      .then(setSession)
      .catch(() => setSession(null));
    return onUnauthorized(() => setSession(null));
  }, []);
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) return <Login onLogin={setSession} />;
  return (
    <NamespaceContext.Provider value={{ namespace, setNamespace }}>
      <Shell session={session} onLogout={() => setSession(null)} />
    </NamespaceContext.Provider>
  );
}

function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      // A first GET gives the browser its CSRF cookie when it has none.
      await fetch('/auth/session', { credentials: 'same-origin' });
      onLogin(await post<Session>('/auth/login', { token }));
    } catch (err) {
      setError(err instanceof ApiError ? ((err.status as Status).message ?? err.message) : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Calyptia Core</h1>
        <p>
          Sign in with a Kubernetes bearer token: a ServiceAccount token (<code>kubectl create token NAME</code>) or your
          identity provider's ID token. What you may see and change is what RBAC gives that identity.
        </p>
        <Field id="token" label="Bearer token">
          <textarea id="token" name="token" rows={4} required value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} autocomplete="off" spellcheck={false} />
        </Field>
        {error && (
          <div class="notice notice-error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="hint">The token is kept only in an HttpOnly cookie of this site, never in the page's storage.</p>
      </form>
    </main>
  );
}

const nav = [
  { href: '#/pipelines', page: ['pipelines', 'pipeline', 'new-pipeline'], label: 'Pipelines' },
  { href: '#/instances', page: ['instances'], label: 'Core instances' },
  { href: '#/secrets', page: ['secrets'], label: 'Secrets' },
  { href: '#/profiles', page: ['profiles'], label: 'Resource profiles' },
];

function Shell({ session, onLogout }: { session: Session; onLogout: () => void }) {
  const route = useRoute();
  const { namespace, setNamespace } = useNamespace();
  const [nsDraft, setNsDraft] = useState(namespace);
  const [known, setKnown] = useState<string[]>([]);
  useEffect(() => {
    // Listing namespaces needs a cluster-wide grant many users lack: then they type one.
    get<List<{ metadata: { name: string } }>>('/k8s/api/v1/namespaces')
      .then((l) => setKnown(l.items.map((n) => n.metadata.name)))
      .catch(() => setKnown([]));
  }, []);
  useEffect(() => setNsDraft(namespace), [namespace]);
  const logout = async () => {
    await post('/auth/logout', {}).catch(() => {});
    onLogout();
  };
  let page;
  switch (route.page) {
    case 'instances':
      page = <CoreInstancesPage />;
      break;
    case 'pipelines':
      page = <PipelinesPage />;
      break;
    case 'pipeline':
      page = <PipelinePage namespace={route.namespace!} name={route.name!} tab={route.tab!} />;
      break;
    case 'new-pipeline':
      page = <NewPipelinePage />;
      break;
    case 'secrets':
      page = <SecretsPage />;
      break;
    case 'profiles':
      page = <ProfilesPage />;
      break;
    default:
      page = <h1>Page not found</h1>;
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Calyptia Core</span>
        <nav aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.href}>
                <a href={n.href} aria-current={n.page.includes(route.page) ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <form
          class="ns"
          role="search"
          aria-label="Namespace"
          onSubmit={(e) => {
            e.preventDefault();
            setNamespace(nsDraft.trim());
          }}
        >
          <label for="namespace">Namespace</label>
          <input id="namespace" list="namespaces" value={nsDraft} placeholder="all namespaces" onInput={(e) => setNsDraft((e.target as HTMLInputElement).value)} onChange={(e) => setNamespace((e.target as HTMLInputElement).value.trim())} />
          <datalist id="namespaces">
            {known.map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </form>
        <div class="user">
          <span title={(session.groups ?? []).join(', ')} data-testid="username">
            {session.username}
          </span>
          {session.mode === 'token' && (
            <button type="button" class="link" onClick={logout}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
