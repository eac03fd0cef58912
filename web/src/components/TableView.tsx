import { memo } from 'preact/compat';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { setEnabled } from '../api';
import { collapsedGroups, setGroupCollapsed, starred, toggleStar } from '../prefs';
import { linkClick, resourcePath } from '../router';
import {
  combinedStatus,
  groupsOf,
  isDisabled,
  lastUpdateTime,
  podOrPid,
  resourceType,
  statusText,
  TILTFILE,
  type Combined,
} from '../status';
import { changed, resourceButtons, state, useAppState } from '../store';
import type { UIButton, UIResource } from '../types';
import { ApiButton, Endpoints, ModeToggle, StatusIcon, TimeAgo, TriggerButton } from './common';

// Table selection and keyboard focus live at module level so the shortcuts can reach them.
export const tableUi = {
  selected: new Set<string>(),
  focused: '',
  visible: [] as string[],
  itemNames: [] as string[],
  scrollTo: (_name: string): void => {},
};

type SortKey = 'default' | 'name' | 'type' | 'status' | 'updated' | 'pod' | 'mode';

const STATUS_RANK: Record<Combined, number> = {
  error: 0,
  unhealthy: 1,
  warning: 2,
  building: 3,
  pending: 4,
  unknown: 5,
  healthy: 6,
  none: 7,
  disabled: 8,
};

interface RowProps {
  r: UIResource;
  group: string;
  warn: number;
  selected: boolean;
  star: boolean;
  focused: boolean;
  buttons: UIButton[];
  toggling: string;
  hasToggle: boolean;
}

const Row = memo(function Row({ r, group, warn, selected, star, focused, buttons, toggling, hasToggle }: RowProps) {
  const name = r.metadata.name;
  const st = combinedStatus(r, warn);
  const s = r.status || {};
  const pid = podOrPid(r);
  const tiltfile = name === TILTFILE;
  return (
    <tr
      class={`row${selected ? ' selected' : ''}${focused ? ' focused' : ''}${st === 'disabled' ? ' is-disabled' : ''}`}
      data-name={name}
      data-group={group}
      onClick={() => {
        tableUi.focused = name;
        changed();
      }}
    >
      <td class="c-select">
        <input
          type="checkbox"
          aria-label={`Select ${name}`}
          checked={selected}
          disabled={!hasToggle}
          onClick={(e) => e.stopPropagation()}
          onChange={() => {
            if (tableUi.selected.has(name)) tableUi.selected.delete(name);
            else tableUi.selected.add(name);
            changed();
          }}
        />
      </td>
      <td class="c-star">
        <button
          class={`star${star ? ' on' : ''}`}
          aria-label={star ? `Unstar ${name}` : `Star ${name}`}
          onClick={(e) => {
            e.stopPropagation();
            toggleStar(name);
          }}
        >
          {star ? '★' : '☆'}
        </button>
      </td>
      <td class="c-updated">
        <TimeAgo iso={lastUpdateTime(r)} />
      </td>
      <td class="c-trigger">
        <TriggerButton r={r} compact />
      </td>
      <td class="c-name">
        <a href={resourcePath(name)} onClick={linkClick}>
          {name}
        </a>
      </td>
      <td class="c-type">{resourceType(r)}</td>
      <td class={`c-status st-${st}`} data-status={st}>
        <StatusIcon status={st} /> {toggling ? (toggling === 'disable' ? 'Disabling…' : 'Enabling…') : statusText(r, st)}
        {warn > 0 && st !== 'disabled' ? <span class="warn-count" title="Warnings in the logs">{` ⚠ ${warn}`}</span> : null}
      </td>
      <td class="c-pod">{pid}</td>
      <td class="c-endpoints">
        <Endpoints r={r} />
      </td>
      <td class="c-mode">{tiltfile ? null : <ModeToggle name={name} mode={s.triggerMode} />}</td>
      <td class="c-widgets">
        {buttons.map((b) => (
          <ApiButton key={b.metadata.name} b={b} />
        ))}
      </td>
    </tr>
  );
});

function sortValue(r: UIResource, key: SortKey, warn: number): string | number {
  switch (key) {
    case 'name':
      return r.metadata.name;
    case 'type':
      return resourceType(r);
    case 'status':
      return STATUS_RANK[combinedStatus(r, warn)];
    case 'updated':
      return -(Date.parse(lastUpdateTime(r)) || 0);
    case 'pod':
      return podOrPid(r);
    case 'mode':
      return r.status?.triggerMode || 0;
  }
  return 0;
}

export const ROW_H = 32;
const OVERSCAN = 12;

type Item = { kind: 'group'; name: string; rows: UIResource[]; collapsed: boolean } | { kind: 'row'; group: string; r: UIResource };

export function TableView() {
  const st = useAppState();
  const [filter, setFilter] = useState('');
  const [showDisabled, setShowDisabled] = useState(() => localStorage.getItem('tilt-show-disabled') !== 'false');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'default', desc: false });
  const [scroll, setScroll] = useState({ top: 0, height: 800 });
  const collapsedDefault = useMemo(() => new URLSearchParams(location.search).get('collapsed') === 'true', []);
  const scrollRef = useRef<HTMLDivElement>(null);
  const headRef = useRef<HTMLDivElement>(null);
  const warnCounts = st.logs.warnCounts;
  const stars = starred();
  const collapsed = collapsedGroups();

  useEffect(() => {
    const el = scrollRef.current!;
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
    tableUi.scrollTo = (name: string) => {
      const i = tableUi.itemNames.indexOf(name);
      if (i < 0) return;
      const table = el.querySelector('table.resources') as HTMLTableElement | null;
      const theadH = table?.tHead?.offsetHeight || 30;
      const top = (table?.offsetTop || 0) + theadH + i * ROW_H;
      if (top - theadH < el.scrollTop) el.scrollTop = top - theadH;
      else if (top + ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_H - el.clientHeight;
    };
    return () => {
      el.removeEventListener('scroll', onScroll);
      ro.disconnect();
      if (raf) cancelAnimationFrame(raf);
    };
  }, []);

  const needle = filter.trim().toLowerCase();
  const disabledCount = st.resources.reduce((n, r) => n + (isDisabled(r) ? 1 : 0), 0);
  let rows = st.resources.filter(
    (r) =>
      (showDisabled || !isDisabled(r) || st.pendingToggle.has(r.metadata.name)) &&
      (!needle || r.metadata.name.toLowerCase().includes(needle)),
  );
  if (sort.key !== 'default') {
    const k = sort.key;
    const vals = new Map(rows.map((r) => [r, sortValue(r, k, warnCounts.get(r.metadata.name) || 0)]));
    rows = rows.slice().sort((a, b) => {
      const va = vals.get(a)!;
      const vb = vals.get(b)!;
      const c = va < vb ? -1 : va > vb ? 1 : 0;
      return sort.desc ? -c : c;
    });
  }

  // Groups by label key; the Tiltfile has its own group; resources without labels go to "unlabeled".
  const anyLabels = st.resources.some((r) => groupsOf(r).length > 0);
  const groups: { name: string; rows: UIResource[] }[] = [];
  if (anyLabels) {
    const map = new Map<string, UIResource[]>();
    const tiltfile: UIResource[] = [];
    const unlabeled: UIResource[] = [];
    for (const r of rows) {
      if (r.metadata.name === TILTFILE) {
        tiltfile.push(r);
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
    if (tiltfile.length) groups.push({ name: 'Tiltfile', rows: tiltfile });
    for (const g of [...map.keys()].sort()) groups.push({ name: g, rows: map.get(g)! });
    if (unlabeled.length) groups.push({ name: 'unlabeled', rows: unlabeled });
  } else {
    groups.push({ name: '', rows });
  }

  // One flat list of fixed-height items; only the ones in view are rendered.
  const items: Item[] = [];
  const itemNames: string[] = [];
  const visible: string[] = [];
  const isCollapsed = (g: string) => (g ? (collapsed[g] ?? collapsedDefault) : false);
  for (const g of groups) {
    const c = isCollapsed(g.name);
    if (g.name) {
      items.push({ kind: 'group', name: g.name, rows: g.rows, collapsed: c });
      itemNames.push('');
    }
    if (c) continue;
    for (const r of g.rows) {
      items.push({ kind: 'row', group: g.name, r });
      itemNames.push(r.metadata.name);
      visible.push(r.metadata.name);
    }
  }
  tableUi.visible = [...new Set(visible)];
  tableUi.itemNames = itemNames;

  const selected = tableUi.selected;
  // Drop selections that no longer exist.
  for (const n of selected) if (!st.resourceMap.has(n)) selected.delete(n);
  const selectable = (list: UIResource[]) =>
    list.filter((r) => st.buttonIndex.disable.has(r.metadata.name)).map((r) => r.metadata.name);
  const allSelectable = selectable(rows);
  const allSelected = allSelectable.length > 0 && allSelectable.every((n) => selected.has(n));

  const headH = (headRef.current?.offsetHeight || 40) + 40;
  const bodyTop = Math.max(0, scroll.top - headH);
  const from = Math.max(0, Math.floor(bodyTop / ROW_H) - OVERSCAN);
  const to = Math.min(items.length, Math.ceil((bodyTop + scroll.height) / ROW_H) + OVERSCAN);

  const header = (key: SortKey, label: string, cls: string) => (
    <th
      class={`${cls} sortable${sort.key === key ? ' sorted' : ''}`}
      onClick={() => setSort(sort.key === key ? (sort.desc ? { key: 'default', desc: false } : { key, desc: true }) : { key, desc: false })}
      title={`Sort by ${label}`}
    >
      {label}
      {sort.key === key ? (sort.desc ? ' ▼' : ' ▲') : ''}
    </th>
  );

  const rendered = [];
  for (let i = from; i < to; i++) {
    const it = items[i];
    if (it.kind === 'group') {
      const names = selectable(it.rows);
      const groupSelected = names.length > 0 && names.every((n) => selected.has(n));
      rendered.push(
        <tr class="group-row" key={'g:' + it.name} data-group={it.name}>
          <td class="c-select">
            <input
              type="checkbox"
              aria-label={`Select group ${it.name}`}
              data-testid={`select-group-${it.name}`}
              checked={groupSelected}
              disabled={!names.length}
              onChange={() => {
                if (groupSelected) for (const n of names) selected.delete(n);
                else for (const n of names) selected.add(n);
                changed();
              }}
            />
          </td>
          <td colSpan={10}>
            <button class="group-toggle" aria-expanded={!it.collapsed} onClick={() => setGroupCollapsed(it.name, !it.collapsed)}>
              {it.collapsed ? '▸' : '▾'} {it.name}
            </button>
            <GroupSummary rows={it.rows} />
          </td>
        </tr>,
      );
    } else {
      const name = it.r.metadata.name;
      rendered.push(
        <Row
          key={it.group + '/' + name}
          r={it.r}
          group={it.group}
          warn={warnCounts.get(name) || 0}
          selected={selected.has(name)}
          star={stars.has(name)}
          focused={tableUi.focused === name}
          buttons={resourceButtons(name)}
          toggling={st.pendingToggle.get(name) || ''}
          hasToggle={st.buttonIndex.disable.has(name)}
        />,
      );
    }
  }

  return (
    <div class="table-view" ref={scrollRef}>
      <div class="toolbar" ref={headRef}>
        <input
          id="resource-filter"
          class="filter"
          type="search"
          placeholder="Filter resources by name"
          value={filter}
          onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
        />
        <label class="check">
          <input
            type="checkbox"
            checked={showDisabled}
            onChange={(e) => {
              const v = (e.currentTarget as HTMLInputElement).checked;
              localStorage.setItem('tilt-show-disabled', String(v));
              setShowDisabled(v);
            }}
          />{' '}
          Show disabled resources{disabledCount ? ` (${disabledCount})` : ''}
        </label>
        <span class="muted">{rows.length} of {st.resources.length} resources</span>
        {selected.size > 0 && !st.snapshotId ? (
          <span class="bulk" data-testid="bulk-actions">
            <span>{selected.size} selected</span>
            <button data-testid="bulk-enable" onClick={() => bulk(true)}>
              Enable
            </button>
            <button data-testid="bulk-disable" class="danger" onClick={() => bulk(false)}>
              Disable
            </button>
            <button
              onClick={() => {
                selected.clear();
                changed();
              }}
            >
              Clear selection
            </button>
          </span>
        ) : null}
      </div>
      <table class="resources" data-testid="resource-table" data-rows={visible.length} data-total={rows.length}>
        <colgroup>
          <col class="w-select" />
          <col class="w-star" />
          <col class="w-updated" />
          <col class="w-trigger" />
          <col class="w-name" />
          <col class="w-type" />
          <col class="w-status" />
          <col class="w-pod" />
          <col class="w-endpoints" />
          <col class="w-mode" />
          <col class="w-widgets" />
        </colgroup>
        <thead>
          <tr>
            <th class="c-select">
              <input
                type="checkbox"
                aria-label="Select all"
                checked={allSelected}
                onChange={() => {
                  if (allSelected) selected.clear();
                  else for (const n of allSelectable) selected.add(n);
                  changed();
                }}
              />
            </th>
            <th class="c-star">★</th>
            {header('updated', 'Updated', 'c-updated')}
            <th class="c-trigger">Trigger</th>
            {header('name', 'Resource Name', 'c-name')}
            {header('type', 'Type', 'c-type')}
            {header('status', 'Status', 'c-status')}
            {header('pod', 'Pod ID / PID', 'c-pod')}
            <th class="c-endpoints">Endpoints</th>
            {header('mode', 'Mode', 'c-mode')}
            <th class="c-widgets">Widgets</th>
          </tr>
        </thead>
        <tbody>
          {from > 0 ? <tr class="spacer-row" style={{ height: from * ROW_H + 'px' }} /> : null}
          {rendered}
          {to < items.length ? <tr class="spacer-row" style={{ height: (items.length - to) * ROW_H + 'px' }} /> : null}
        </tbody>
      </table>
      {rows.length === 0 ? (
        <div class="empty">{st.resources.length ? 'No resources match the filter.' : 'No resources yet.'}</div>
      ) : null}
    </div>
  );
}

function GroupSummary({ rows }: { rows: UIResource[] }) {
  let err = 0;
  let ok = 0;
  for (const r of rows) {
    const s = combinedStatus(r, state.logs.warnCounts.get(r.metadata.name) || 0);
    if (s === 'error' || s === 'unhealthy') err++;
    else if (s === 'healthy' || s === 'warning' || s === 'none') ok++;
  }
  return (
    <span class="group-summary">
      {rows.length} resource{rows.length === 1 ? '' : 's'}
      {err ? <span class="st-error"> · {err} error{err === 1 ? '' : 's'}</span> : null}
      <span class="muted"> · {ok} ready</span>
    </span>
  );
}

function bulk(enable: boolean): void {
  const names = [...tableUi.selected];
  tableUi.selected.clear();
  changed();
  setEnabled(names, enable);
}
