// Preferences kept in localStorage: starred resources, collapsed groups, log display toggles.

import { changed, state } from './store';

function read<T>(key: string, fallback: T): T {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : (JSON.parse(v) as T);
  } catch {
    return fallback;
  }
}

function write(key: string, v: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(v));
  } catch {
    /* storage off */
  }
}

function tiltfileKey(): string {
  return String(state.session?.status?.tiltfileKey || '');
}

function scopedKey(key: string): string {
  return `tilt-${JSON.stringify({ tiltfileKey: tiltfileKey(), key })}`;
}

let starredCache: { key: string; set: Set<string> } | null = null;

export function starred(): Set<string> {
  const key = scopedKey('pinned-resources');
  if (!starredCache || starredCache.key !== key) starredCache = { key, set: new Set(read<string[]>(key, [])) };
  return starredCache.set;
}

export function toggleStar(name: string): void {
  const cur = starred();
  const next = new Set(cur);
  if (next.has(name)) next.delete(name);
  else next.add(name);
  const key = scopedKey('pinned-resources');
  starredCache = { key, set: next };
  write(key, [...next]);
  changed();
}

export function collapsedGroups(): Record<string, boolean> {
  return read<Record<string, boolean>>(scopedKey('collapsed-groups'), {});
}

export function setGroupCollapsed(group: string, collapsed: boolean): void {
  const cur = collapsedGroups();
  cur[group] = collapsed;
  write(scopedKey('collapsed-groups'), cur);
  changed();
}

export function logPref(name: 'timestamps' | 'wrap'): boolean {
  return read<boolean>(`tilt-log-${name}`, false);
}

export function setLogPref(name: 'timestamps' | 'wrap', v: boolean): void {
  write(`tilt-log-${name}`, v);
  changed();
}
