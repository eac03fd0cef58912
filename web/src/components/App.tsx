import { useEffect, useState } from 'preact/hooks';
import { dismissSnack, snacks, triggerResource } from '../api';
import { starred } from '../prefs';
import { linkClick, navigate, resourcePath, tablePath, useRoute } from '../router';
import { combinedStatus, countStatuses, documentTitle, faviconColor, type Counts } from '../status';
import { buildSnapshot, changed, state, useAppState } from '../store';
import { ApiButton, StatusIcon } from './common';
import { activeClear, ALL, focusLogFilter } from './LogPane';
import { ResourceView, sidebarOrder } from './ResourceView';
import { tableUi, TableView } from './TableView';

let lastTitle = '';
let lastIcon = '';

function useTitleAndFavicon(counts: Counts, connected: boolean, snapshot: boolean, loading: boolean) {
  const title = loading ? 'Tilt' : documentTitle(counts, connected, snapshot);
  const icon = `/static/ico/favicon-${loading ? 'gray' : faviconColor(counts, connected || snapshot)}.svg`;
  if (title !== lastTitle) {
    lastTitle = title;
    document.title = title;
  }
  if (icon !== lastIcon) {
    lastIcon = icon;
    const link = document.getElementById('favicon') as HTMLLinkElement | null;
    if (link) link.href = icon;
  }
}

function downloadSnapshot(): void {
  const snap = buildSnapshot();
  const ts = snap.createdAt!.replace(/[:.]/g, '-');
  const blob = new Blob([JSON.stringify(snap)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `tilt-snapshot_${ts}.json`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function Header({ counts }: { counts: Counts }) {
  const st = state;
  const route = useRoute();
  const clusters = [...st.clusters.values()];
  const version = st.session?.status?.runningTiltBuild?.version;
  return (
    <header class="top">
      <a class="brand" href={tablePath()} onClick={linkClick}>
        tilt
      </a>
      <nav class="views">
        <a class={route.page === 'table' ? 'active' : ''} href={tablePath()} onClick={linkClick}>
          Table
        </a>
        <a class={route.page === 'resource' ? 'active' : ''} href={resourcePath(route.name || ALL)} onClick={linkClick}>
          Detail
        </a>
      </nav>
      <div class="counts" data-testid="status-counts">
        <span class="count st-healthy" data-count={counts.healthy} title="Healthy">
          <StatusIcon status="healthy" /> {counts.healthy}/{counts.total}
        </span>
        <span class="count st-unhealthy" data-count={counts.unhealthy} title="Unhealthy">
          <StatusIcon status="unhealthy" /> {counts.unhealthy}
        </span>
        <span class="count st-pending" data-count={counts.pending} title="Pending">
          <StatusIcon status="pending" /> {counts.pending}
        </span>
        <span class="count st-warning" data-count={counts.warning} title="Warnings">
          <StatusIcon status="warning" /> {counts.warning}
        </span>
        <span class="count st-disabled" data-count={counts.disabled} title="Disabled">
          <StatusIcon status="disabled" /> {counts.disabled}
        </span>
      </div>
      <span class="spacer" />
      {clusters.map((c) => {
        const err = c.status?.error;
        const ok = !err && !!c.status?.connection;
        return (
          <span
            key={c.metadata.name}
            class={`cluster ${err ? 'st-unhealthy' : ok ? 'st-healthy' : 'muted'}`}
            title={err || (ok ? 'Connected' : 'Not connected')}
          >
            {err ? '✖' : ok ? '●' : '○'} {c.metadata.name}
            {err ? `: ${err.length > 60 ? err.slice(0, 60) + '…' : err}` : ''}
          </span>
        );
      })}
      {st.buttonIndex.global.map((b) => (
        <ApiButton key={b.metadata.name} b={b} />
      ))}
      <button title="Download a snapshot (s)" onClick={downloadSnapshot}>
        Snapshot
      </button>
      <button title="Keyboard shortcuts (?)" onClick={() => setHelp(true)} aria-label="Help">
        ?
      </button>
      {version ? <span class="muted version">v{version}</span> : null}
    </header>
  );
}

function StarBar() {
  const st = state;
  const stars = starred();
  const list = st.resources.filter((r) => stars.has(r.metadata.name));
  if (!list.length) return null;
  return (
    <div class="starbar" aria-label="Starred resources">
      <span class="muted">★</span>
      {list.map((r) => {
        const name = r.metadata.name;
        const s = combinedStatus(r, st.logs.warnCounts.get(name) || 0);
        return (
          <span class="starred" key={name}>
            <a href={resourcePath(name)} onClick={linkClick}>
              <StatusIcon status={s} /> {name}
            </a>
            <button class="mini" title={`Trigger ${name}`} onClick={() => triggerResource(name)} disabled={!!st.snapshotId}>
              ↻
            </button>
          </span>
        );
      })}
    </div>
  );
}

let helpOpen = false;
function setHelp(v: boolean) {
  helpOpen = v;
  changed();
}

function HelpDialog() {
  if (!helpOpen) return null;
  const keys: [string, string][] = [
    ['j / k', 'Next / previous resource'],
    ['r', 'Trigger an update of the selected resource'],
    ['x', 'Select the focused row (table)'],
    ['/', 'Focus the filter'],
    ['Shift+1…9', 'Open the resource’s n-th endpoint'],
    ['Ctrl/Cmd+Backspace', 'Clear logs'],
    ['s', 'Download a snapshot'],
    ['?', 'This help'],
    ['Esc', 'Close dialogs'],
  ];
  return (
    <div class="modal-back" onClick={() => setHelp(false)}>
      <div class="modal" role="dialog" aria-label="Keyboard shortcuts" onClick={(e) => e.stopPropagation()}>
        <h3>Keyboard shortcuts</h3>
        <table class="keys">
          <tbody>
            {keys.map(([k, d]) => (
              <tr key={k}>
                <td>
                  <kbd>{k}</kbd>
                </td>
                <td>{d}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <button onClick={() => setHelp(false)}>Close</button>
      </div>
    </div>
  );
}

function Snackbar() {
  if (!snacks.length) return null;
  return (
    <div class="snacks">
      {snacks.map((s) => (
        <div key={s.id} class={`snack ${s.kind}`} role={s.kind === 'error' ? 'alert' : 'status'} data-testid="snackbar">
          <span>{s.text}</span>
          <button class="mini" aria-label="Dismiss" onClick={() => dismissSnack(s.id)}>
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}

function Bars() {
  const st = state;
  const [fatalHidden, setFatalHidden] = useState('');
  const fatal = st.session?.status?.fatalError;
  return (
    <>
      {st.connection === 'reconnecting' ? (
        <div class="bar socketbar" role="status" data-testid="socket-bar">
          Disconnected from Tilt. Reconnecting…
        </div>
      ) : null}
      {st.connection === 'loading' ? (
        <div class="bar loadingbar" role="status">
          Connecting to Tilt…
        </div>
      ) : null}
      {st.snapshotId ? (
        <div class="bar snapshotbar" role="status">
          {st.snapshotError || 'Snapshot: a read-only view of a saved Tilt session.'}
        </div>
      ) : null}
      {fatal && fatal !== fatalHidden ? (
        <div class="bar fatalbar" role="alert" data-testid="fatal-bar">
          <strong>Tilt stopped with an error:</strong> <span>{fatal}</span>
          <button class="mini" onClick={() => setFatalHidden(fatal)} aria-label="Dismiss">
            ✕
          </button>
        </div>
      ) : null}
    </>
  );
}

function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t) return false;
  const tag = t.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable;
}

function onKey(e: KeyboardEvent): void {
  if ((e.metaKey || e.ctrlKey) && e.key === 'Backspace') {
    if (activeClear && !isTyping(e)) {
      e.preventDefault();
      activeClear();
    }
    return;
  }
  if (e.key === 'Escape' && helpOpen) {
    setHelp(false);
    return;
  }
  if (e.metaKey || e.ctrlKey || e.altKey || isTyping(e)) return;
  const route = parseCurrent();
  const names = route.page === 'table' ? tableUi.visible : sidebarOrder.names;
  const current = route.page === 'table' ? tableUi.focused : route.name || '';
  switch (e.key) {
    case 'j':
    case 'k': {
      if (!names.length) return;
      let i = names.indexOf(current);
      i = e.key === 'j' ? Math.min(names.length - 1, i + 1) : i < 0 ? 0 : Math.max(0, i - 1);
      if (route.page === 'table') {
        tableUi.focused = names[i];
        changed();
        tableUi.scrollTo(names[i]);
      } else navigate(resourcePath(names[i]));
      e.preventDefault();
      return;
    }
    case 'r':
      if (current && current !== ALL) triggerResource(current);
      e.preventDefault();
      return;
    case 'x':
      if (route.page === 'table' && current) {
        if (tableUi.selected.has(current)) tableUi.selected.delete(current);
        else tableUi.selected.add(current);
        changed();
      }
      return;
    case '/': {
      e.preventDefault();
      if (route.page === 'resource' && focusLogFilter()) return;
      const f = document.querySelector<HTMLInputElement>('input.filter');
      f?.focus();
      return;
    }
    case '?':
      setHelp(!helpOpen);
      return;
    case 's':
      downloadSnapshot();
      return;
  }
  if (e.shiftKey && /^Digit[1-9]$/.test(e.code)) {
    const r = state.resourceMap.get(current);
    const link = r?.status?.endpointLinks?.[Number(e.code.slice(5)) - 1];
    if (link) window.open(link.url, '_blank', 'noopener');
  }
}

function parseCurrent() {
  return { ...routeRef.current };
}
const routeRef: { current: ReturnType<typeof useRoute> } = { current: { page: 'table' } };

export function App() {
  const st = useAppState();
  const route = useRoute();
  routeRef.current = route;
  useEffect(() => {
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);
  const counts = countStatuses(st.resources, st.logs.warnCounts);
  const connected = st.connection === 'active';
  useTitleAndFavicon(counts, connected, !!st.snapshotId, st.connection === 'loading');
  return (
    <div class="app">
      <Header counts={counts} />
      <Bars />
      <StarBar />
      {route.page === 'resource' ? <ResourceView name={route.name || ALL} /> : <TableView />}
      <Snackbar />
      <HelpDialog />
    </div>
  );
}
