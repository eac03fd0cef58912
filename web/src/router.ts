// A tiny router: `/`, `/r/:name/overview`, and the same under `/snapshot/:id/`.

import { useEffect, useState } from 'preact/hooks';

export interface Route {
  page: 'table' | 'resource';
  name?: string;
  snapshotId?: string;
}

export function parseRoute(pathname: string): Route {
  let path = pathname;
  let snapshotId: string | undefined;
  const sm = /^\/snapshot\/([^/]+)(\/.*)?$/.exec(path);
  if (sm) {
    snapshotId = decodeURIComponent(sm[1]);
    path = sm[2] || '/';
  }
  const rm = /^\/r\/([^/]+)(?:\/(?:overview)?)?\/?$/.exec(path);
  if (rm) return { page: 'resource', name: decodeURIComponent(rm[1]), snapshotId };
  return { page: 'table', snapshotId };
}

/** The prefix of every in-app link ('' or '/snapshot/<id>'). */
export function basePath(): string {
  const r = parseRoute(location.pathname);
  return r.snapshotId ? `/snapshot/${encodeURIComponent(r.snapshotId)}` : '';
}

export function resourcePath(name: string): string {
  return `${basePath()}/r/${encodeURIComponent(name)}/overview`;
}

export function tablePath(): string {
  return `${basePath()}/`;
}

const listeners = new Set<() => void>();

export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const l of listeners) l();
}

window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const l = () => setRoute(parseRoute(location.pathname));
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}

/** Click handler for in-app <a> links: plain clicks navigate without reloading. */
export function linkClick(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.currentTarget as HTMLAnchorElement;
  e.preventDefault();
  navigate(a.getAttribute('href') || '/');
}
