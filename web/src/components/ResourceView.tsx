import { memo } from 'preact/compat';
import { useEffect, useRef, useState } from 'preact/hooks';
import { collapsedGroups, setGroupCollapsed, starred, toggleStar } from '../prefs';
import { linkClick, resourcePath, tablePath } from '../router';
import { combinedStatus, groupsOf, podOrPid, resourceType, statusText, TILTFILE, type Combined } from '../status';
import { resourceButtons, state, useAppState } from '../store';
import type { UIResource } from '../types';
import { ApiButton, CopyButton, DisableToggle, Endpoints, ModeToggle, StatusIcon, TriggerButton } from './common';
import { ALL, LogPane } from './LogPane';

const SideItem = memo(function SideItem({
  r,
  status,
  active,
  star,
}: {
  r: UIResource;
  status: Combined;
  active: boolean;
  star: boolean;
}) {
  const name = r.metadata.name;
  return (
    <li class={`side-item${active ? ' active' : ''}`} data-name={name}>
      <a href={resourcePath(name)} onClick={linkClick} title={statusText(r, status)}>
        <StatusIcon status={status} />
        <span class="side-name">{name}</span>
      </a>
      <button
        class={`star${star ? ' on' : ''}`}
        aria-label={star ? `Unstar ${name}` : `Star ${name}`}
        onClick={() => toggleStar(name)}
      >
        {star ? '★' : '☆'}
      </button>
    </li>
  );
});

const SIDE_H = 26;

/** The sidebar's order of resources (for j/k). */
export const sidebarOrder: { names: string[] } = { names: [] };

type SideEntry = { kind: 'group'; name: string; count: number; collapsed: boolean } | { kind: 'item'; r: UIResource; group: string };

function Sidebar({ current }: { current: string }) {
  const st = useAppState();
  const [filter, setFilter] = useState('');
  const [scroll, setScroll] = useState({ top: 0, height: 800 });
  const listRef = useRef<HTMLDivElement>(null);
  const stars = starred();
  const collapsed = collapsedGroups();
  const needle = filter.trim().toLowerCase();
  const rows = st.resources.filter((r) => !needle || r.metadata.name.toLowerCase().includes(needle));
  const anyLabels = st.resources.some((r) => groupsOf(r).length > 0);

  // One flat list of fixed-height entries; only those in view are rendered.
  const entries: SideEntry[] = [];
  if (!anyLabels) {
    for (const r of rows) entries.push({ kind: 'item', r, group: '' });
  } else {
    const map = new Map<string, UIResource[]>();
    const unlabeled: UIResource[] = [];
    for (const r of rows) {
      if (r.metadata.name === TILTFILE) {
        entries.push({ kind: 'item', r, group: '' });
        continue;
      }
      const gs = groupsOf(r);
      if (!gs.length) unlabeled.push(r);
      for (const g of gs) {
        let l = map.get(g);
        if (!l) map.set(g, (l = []));
        l.push(r);
      }
    }
    const groups = [...map.keys()].sort().map((g) => ({ name: g, rows: map.get(g)! }));
    if (unlabeled.length) groups.push({ name: 'unlabeled', rows: unlabeled });
    for (const g of groups) {
      const c = !!collapsed[g.name];
      entries.push({ kind: 'group', name: g.name, count: g.rows.length, collapsed: c });
      if (!c) for (const r of g.rows) entries.push({ kind: 'item', r, group: g.name });
    }
  }

  useEffect(() => {
    const el = listRef.current!;
    let raf = 0;
    const read = () => {
      raf = 0;
      setScroll({ top: el.scrollTop, height: el.clientHeight });
    };
    const onScroll = () => {
      if (!raf) raf = requestAnimationFrame(read);
    };
    el.addEventListener('scroll', onScroll, { passive: true });
    const ro = new ResizeObserver(onScroll);
    ro.observe(el);
    return () => {
      el.removeEventListener('scroll', onScroll);
      ro.disconnect();
      if (raf) cancelAnimationFrame(raf);
    };
  }, []);

  sidebarOrder.names = [...new Set(entries.flatMap((e) => (e.kind === 'item' ? [e.r.metadata.name] : [])))];

  // Keep the current resource in view when it changes (j/k, links).
  const currentIndex = entries.findIndex((e) => e.kind === 'item' && e.r.metadata.name === current);
  useEffect(() => {
    const el = listRef.current;
    if (!el || currentIndex < 0) return;
    const top = currentIndex * SIDE_H;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + SIDE_H > el.scrollTop + el.clientHeight) el.scrollTop = top + SIDE_H - el.clientHeight;
  }, [current, currentIndex >= 0]);

  const from = Math.max(0, Math.floor(scroll.top / SIDE_H) - 10);
  const to = Math.min(entries.length, Math.ceil((scroll.top + scroll.height) / SIDE_H) + 10);
  const shown = [];
  for (let i = from; i < to; i++) {
    const e = entries[i];
    if (e.kind === 'group') {
      shown.push(
        <li class="side-group" key={'g:' + e.name}>
          <button class="group-toggle" aria-expanded={!e.collapsed} onClick={() => setGroupCollapsed(e.name, !e.collapsed)}>
            {e.collapsed ? '▸' : '▾'} {e.name} <span class="muted">({e.count})</span>
          </button>
        </li>,
      );
    } else {
      const name = e.r.metadata.name;
      shown.push(
        <SideItem
          key={e.group + '/' + name}
          r={e.r}
          status={combinedStatus(e.r, st.logs.warnCounts.get(name) || 0)}
          active={name === current}
          star={stars.has(name)}
        />,
      );
    }
  }
  return (
    <nav class="sidebar" aria-label="Resources">
      <a class={`side-all${current === ALL ? ' active' : ''}`} href={resourcePath(ALL)} onClick={linkClick}>
        All resources
      </a>
      <input
        class="filter"
        type="search"
        placeholder="Filter resources"
        value={filter}
        onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
      />
      <div class="side-scroll" ref={listRef}>
        <ul class="side-list" style={{ height: entries.length * SIDE_H + 'px' }}>
          <li aria-hidden="true" style={{ height: from * SIDE_H + 'px' }} />
          {shown}
        </ul>
      </div>
    </nav>
  );
}

function ResourceHeader({ r }: { r: UIResource }) {
  const name = r.metadata.name;
  const warn = state.logs.warnCounts.get(name) || 0;
  const status = combinedStatus(r, warn);
  const pid = podOrPid(r);
  const isPod = !!r.status?.k8sResourceInfo?.podName;
  const buttons = resourceButtons(name);
  return (
    <div class="res-header">
      <div class="res-title">
        <StatusIcon status={status} />
        <h2>{name}</h2>
        <span class={`res-status st-${status}`} data-testid="resource-status" data-status={status}>
          {statusText(r, status)}
          {warn > 0 ? ` · ⚠ ${warn}` : ''}
        </span>
        <span class="muted">{resourceType(r)}</span>
      </div>
      <div class="res-actions">
        <TriggerButton r={r} />
        {name !== TILTFILE ? <ModeToggle name={name} mode={r.status?.triggerMode} /> : null}
        <DisableToggle r={r} />
        {buttons.map((b) => (
          <ApiButton key={b.metadata.name} b={b} />
        ))}
      </div>
      <div class="res-info">
        {pid ? (
          <span class="pid" data-testid="resource-pid">
            {isPod ? 'Pod ID' : 'PID'}: <code>{pid}</code> <CopyButton text={pid} />
          </span>
        ) : null}
        <Endpoints r={r} />
      </div>
    </div>
  );
}

export function ResourceView({ name }: { name: string }) {
  const st = useAppState();
  const r = st.resourceMap.get(name);
  return (
    <div class="resource-view">
      <Sidebar current={name} />
      <main class="res-main">
        {name === ALL ? (
          <div class="res-header">
            <div class="res-title">
              <h2>All resources</h2>
              <a href={tablePath()} onClick={linkClick}>
                Table view
              </a>
            </div>
          </div>
        ) : r ? (
          <ResourceHeader r={r} />
        ) : (
          <div class="res-header">
            <h2>{name}</h2>
            <span class="muted">
              {st.connection === 'loading' ? 'Loading…' : 'No resource with this name.'}{' '}
              <a href={tablePath()} onClick={linkClick}>
                Back to the table
              </a>
            </span>
          </div>
        )}
        <LogPane name={name} key={name} />
      </main>
    </div>
  );
}
