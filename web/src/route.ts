import { useEffect, useState } from 'preact/hooks';

// Routes live in the URL's fragment (#/pipelines/NS/NAME/config), so core serves one page and
// every view has an address to share.
export interface Route {
  page: 'instances' | 'pipelines' | 'pipeline' | 'new-pipeline' | 'secrets' | 'profiles' | 'not-found';
  namespace?: string;
  name?: string;
  tab?: string;
}

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  switch (parts[0] ?? 'pipelines') {
    case 'instances':
      return { page: 'instances' };
    case 'pipelines':
      if (parts[1] === 'new') return { page: 'new-pipeline' };
      if (parts.length >= 3) return { page: 'pipeline', namespace: parts[1], name: parts[2], tab: parts[3] ?? 'overview' };
      return { page: 'pipelines' };
    case 'secrets':
      return { page: 'secrets' };
    case 'profiles':
      return { page: 'profiles' };
    default:
      return { page: 'not-found' };
  }
}

export function pipelineHref(namespace: string, name: string, tab?: string): string {
  return `#/pipelines/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}${tab ? '/' + tab : ''}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function navigate(href: string) {
  location.hash = href.replace(/^#/, '');
}
