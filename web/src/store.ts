// The page's state: the merged View, the log store and the socket, with a tiny subscription hook.

import { useEffect, useState } from 'preact/hooks';
import { LogStore } from './logstore';
import { TILTFILE } from './status';
import type { Cluster, Snapshot, UIButton, UIResource, UISession, View } from './types';

export type Connection = 'loading' | 'active' | 'reconnecting' | 'snapshot' | 'error';

export interface ButtonIndex {
  byResource: Map<string, UIButton[]>; // custom buttons on a resource
  global: UIButton[]; // custom buttons in the header
  disable: Map<string, UIButton>; // DisableToggle per resource
  stop: Map<string, UIButton>; // StopBuild per resource
}

const EMPTY: UIButton[] = [];

export interface State {
  resources: UIResource[];
  resourceMap: Map<string, UIResource>;
  buttons: Map<string, UIButton>;
  buttonIndex: ButtonIndex;
  session?: UISession;
  clusters: Map<string, Cluster>;
  tiltStartTime?: string;
  connection: Connection;
  everConnected: boolean;
  logs: LogStore;
  warnVersion: number;
  snapshotId?: string;
  snapshotError?: string;
  /** Resources a bulk action was just sent for (name → 'disable'|'enable'), until the server reports it. */
  pendingToggle: Map<string, string>;
  version: number;
}

export const state: State = {
  resources: [],
  resourceMap: new Map(),
  buttons: new Map(),
  buttonIndex: { byResource: new Map(), global: [], disable: new Map(), stop: new Map() },
  clusters: new Map(),
  connection: 'loading',
  everConnected: false,
  logs: new LogStore(),
  warnVersion: 0,
  pendingToggle: new Map(),
  version: 0,
};

const listeners = new Set<() => void>();
let scheduled = false;

/** Notifies subscribers once per animation frame at most. */
export function changed(): void {
  state.version++;
  if (scheduled) return;
  scheduled = true;
  const run = () => {
    scheduled = false;
    for (const l of listeners) l();
  };
  if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible') requestAnimationFrame(run);
  else setTimeout(run, 0);
}

export function useAppState(): State {
  const [, setV] = useState(0);
  useEffect(() => {
    const l = () => setV(state.version);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return state;
}

function sortResources(list: UIResource[]): UIResource[] {
  return list.sort((a, b) => {
    const an = a.metadata.name;
    const bn = b.metadata.name;
    if (an === TILTFILE) return -1;
    if (bn === TILTFILE) return 1;
    const ao = a.status?.order;
    const bo = b.status?.order;
    if (ao !== undefined && bo !== undefined && ao !== bo) return ao - bo;
    if (ao !== undefined && bo === undefined) return -1;
    if (ao === undefined && bo !== undefined) return 1;
    return an < bn ? -1 : an > bn ? 1 : 0;
  });
}

function buttonType(b: UIButton): string {
  return b.metadata.annotations?.['tilt.dev/uibutton-type'] || '';
}

function sameArray(a: UIButton[] | undefined, b: UIButton[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function indexButtons(): void {
  const prev = state.buttonIndex;
  const byResource = new Map<string, UIButton[]>();
  const global: UIButton[] = [];
  const disable = new Map<string, UIButton>();
  const stop = new Map<string, UIButton>();
  const sorted = [...state.buttons.values()].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
  );
  for (const b of sorted) {
    const type = buttonType(b);
    const loc = b.spec?.location || {};
    const id = loc.componentID || '';
    if (type === 'Trigger' || b.metadata.name === `${id}:trigger`) continue;
    if (type === 'DisableToggle') {
      disable.set(id, b);
      continue;
    }
    if (type === 'StopBuild') {
      stop.set(id, b);
      continue;
    }
    if (loc.componentType === 'Global') global.push(b);
    else if ((loc.componentType || '').toLowerCase() === 'resource') {
      let l = byResource.get(id);
      if (!l) byResource.set(id, (l = []));
      l.push(b);
    }
  }
  for (const [k, v] of byResource) {
    const old = prev.byResource.get(k);
    if (sameArray(old, v)) byResource.set(k, old!);
  }
  state.buttonIndex = {
    byResource,
    global: sameArray(prev.global, global) ? prev.global : global,
    disable,
    stop,
  };
}

export function resourceButtons(name: string): UIButton[] {
  return state.buttonIndex.byResource.get(name) || EMPTY;
}

function mergeByName<T extends { metadata: { name: string; deletionTimestamp?: string } }>(
  map: Map<string, T>,
  items: T[] | undefined,
): boolean {
  if (!items || !items.length) return false;
  for (const it of items) {
    if (it.metadata.deletionTimestamp) map.delete(it.metadata.name);
    else map.set(it.metadata.name, it);
  }
  return true;
}

/** Applies one View message (complete or delta). */
export function applyView(view: View, forceComplete = false): void {
  if (view.tiltStartTime && state.tiltStartTime && view.tiltStartTime !== state.tiltStartTime && !state.snapshotId) {
    location.reload();
    return;
  }
  if (view.tiltStartTime) state.tiltStartTime = view.tiltStartTime;
  const complete = view.isComplete || forceComplete;
  if (complete) {
    state.resourceMap = new Map();
    state.buttons = new Map();
    state.clusters = new Map();
    state.logs = newLogStore();
    state.session = view.uiSession;
  } else if (view.uiSession) {
    state.session = view.uiSession;
  }
  const resChanged = mergeByName(state.resourceMap, view.uiResources) || complete;
  if (resChanged) {
    state.resources = sortResources([...state.resourceMap.values()]);
    for (const [name, action] of state.pendingToggle) {
      const r = state.resourceMap.get(name);
      const st = r?.status?.disableStatus?.state;
      if (!r || (action === 'disable' && st === 'Disabled') || (action === 'enable' && st === 'Enabled'))
        state.pendingToggle.delete(name);
    }
  }
  if (mergeByName(state.buttons, view.uiButtons) || complete) indexButtons();
  mergeByName(state.clusters, view.clusters);
  const logs = state.logs;
  const warnBefore = logs.warnTotal;
  if (logs.append(view.logList)) {
    if (logs.warnTotal !== warnBefore) state.warnVersion++;
    logs.notify();
  }
  changed();
}

function newLogStore(): LogStore {
  const logs = new LogStore();
  logs.onChange = (warnChanged) => {
    if (logs !== state.logs) return;
    if (warnChanged) {
      state.warnVersion++;
      changed();
    }
  };
  return logs;
}

// ---- the socket ----

let attempts = 0;
let socket: WebSocket | null = null;

function isLocalhost(): boolean {
  const h = location.hostname;
  return h === 'localhost' || h === '127.0.0.1' || h === '[::1]' || h === '::1';
}

function scheduleReconnect(): void {
  attempts++;
  const delay = isLocalhost() ? 1500 : Math.min(10, Math.pow(2, attempts)) * 1000;
  setTimeout(connect, delay);
}

interface EarlySocket {
  socket: Promise<WebSocket>;
  msgs: string[];
  closed: boolean;
}

export async function connect(): Promise<void> {
  const w = window as unknown as { __tiltEarly?: EarlySocket };
  const early = w.__tiltEarly;
  if (early) {
    // index.html opened the socket while the bundle loaded; take it over with what it received.
    delete w.__tiltEarly;
    try {
      const ws = await early.socket;
      attach(ws, early.msgs, early.closed);
      return;
    } catch {
      /* fall back to a fresh connection */
    }
  }
  if (state.everConnected) {
    state.connection = 'reconnecting';
    changed();
  }
  let token: string;
  try {
    const resp = await fetch('/api/websocket_token', { credentials: 'same-origin' });
    if (!resp.ok) throw new Error('token ' + resp.status);
    token = (await resp.text()).trim();
  } catch {
    state.connection = state.everConnected ? 'reconnecting' : 'loading';
    changed();
    scheduleReconnect();
    return;
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  attach(new WebSocket(`${proto}//${location.host}/ws/view?csrf=${encodeURIComponent(token)}`), [], false);
}

function attach(ws: WebSocket, buffered: string[], alreadyClosed: boolean): void {
  socket = ws;
  (window as unknown as { __tiltSocket: WebSocket }).__tiltSocket = ws;
  let first = true;
  const onMessage = (data: string) => {
    let view: View;
    try {
      view = JSON.parse(data);
    } catch {
      return;
    }
    const isFirst = first;
    if (first) {
      first = false;
      attempts = 0;
      state.everConnected = true;
      state.connection = 'active';
    }
    applyView(view, isFirst && view.isComplete === undefined);
  };
  const onClose = () => {
    if (socket !== ws) return;
    socket = null;
    if (state.everConnected) state.connection = 'reconnecting';
    changed();
    scheduleReconnect();
  };
  ws.onmessage = (e) => onMessage(e.data as string);
  ws.onclose = onClose;
  for (const m of buffered) onMessage(m);
  if (alreadyClosed || ws.readyState === WebSocket.CLOSED) onClose();
}

export async function loadSnapshot(id: string): Promise<void> {
  state.snapshotId = id;
  state.connection = 'snapshot';
  try {
    const resp = await fetch(`/api/snapshot/${encodeURIComponent(id)}`, { credentials: 'same-origin' });
    if (!resp.ok) throw new Error(`${resp.status} ${await resp.text()}`);
    const snap = (await resp.json()) as Snapshot;
    applyView(snap.view || {}, true);
  } catch (e) {
    state.snapshotError = 'Could not load snapshot: ' + String((e as Error).message || e);
    changed();
  }
}

/** The current state as a snapshot file body. */
export function buildSnapshot(): Snapshot {
  const logs = state.logs;
  const segments = [];
  const spans: Record<string, { manifestName: string }> = {};
  for (let i = 0; i < logs.texts.length; i++) {
    const spanId = logs.spanIds[i];
    if (!spans[spanId]) spans[spanId] = { manifestName: logs.manifests[i] };
    segments.push({
      spanId,
      time: logs.times[i],
      text: logs.texts[i] + '\n',
      level: logs.levels[i] === 2 ? 'ERROR' : logs.levels[i] === 1 ? 'WARN' : 'INFO',
    });
  }
  return {
    view: {
      uiSession: state.session,
      uiResources: state.resources,
      uiButtons: [...state.buttons.values()],
      clusters: [...state.clusters.values()],
      logList: { spans, segments, fromCheckpoint: 0, toCheckpoint: segments.length },
      tiltStartTime: state.tiltStartTime,
      isComplete: true,
    },
    createdAt: new Date().toISOString(),
  };
}
