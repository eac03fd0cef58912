// The combined status rule and the summary (header counts, title, favicon).

import type { UIResource } from './types';

export type Combined =
  | 'disabled'
  | 'building'
  | 'pending'
  | 'error'
  | 'healthy'
  | 'warning'
  | 'unhealthy'
  | 'unknown'
  | 'none';

export const TILTFILE = '(Tiltfile)';

export function isDisabled(r: UIResource): boolean {
  return r.status?.disableStatus?.state === 'Disabled';
}

export function isBuilding(r: UIResource): boolean {
  return !!r.status?.currentBuild?.startTime && !r.status.currentBuild.startTime.startsWith('0001');
}

export function combinedStatus(r: UIResource, warnings: number): Combined {
  const s = r.status || {};
  if (isDisabled(r)) return 'disabled';
  const u = s.updateStatus;
  if (u === 'in_progress' || isBuilding(r)) return 'building';
  if (u === 'pending') return 'pending';
  if (u === 'error') return 'error';
  const rt = s.runtimeStatus;
  let c: Combined;
  if (rt === 'error') c = 'unhealthy';
  else if (rt === 'pending') c = 'pending';
  else if (rt === 'ok') c = 'healthy';
  else if (rt === 'unknown') c = 'unknown';
  else if (u === 'ok') c = 'healthy';
  else c = 'none';
  if ((c === 'healthy' || c === 'none') && warnings > 0) return 'warning';
  return c;
}

export const STATUS_TEXT: Record<Combined, string> = {
  disabled: 'Disabled',
  building: 'Updating',
  pending: 'Pending',
  error: 'Update error',
  healthy: 'Ready',
  warning: 'Warning',
  unhealthy: 'Runtime error',
  unknown: 'Unknown',
  none: 'Idle',
};

export function statusText(r: UIResource, c: Combined): string {
  if (c === 'pending' && r.status?.waiting?.reason) return 'Pending: ' + r.status.waiting.reason;
  if (c === 'healthy' && r.status?.runtimeStatus === 'not_applicable') return 'Updated';
  return STATUS_TEXT[c];
}

export interface Counts {
  total: number; // enabled resources
  healthy: number;
  unhealthy: number;
  pending: number;
  warning: number;
  disabled: number;
}

export function countStatuses(resources: UIResource[], warnCounts: Map<string, number>): Counts {
  const c: Counts = { total: 0, healthy: 0, unhealthy: 0, pending: 0, warning: 0, disabled: 0 };
  for (const r of resources) {
    const s = combinedStatus(r, warnCounts.get(r.metadata.name) || 0);
    if (s === 'disabled') {
      c.disabled++;
      continue;
    }
    c.total++;
    if (s === 'error' || s === 'unhealthy') c.unhealthy++;
    else if (s === 'building' || s === 'pending' || s === 'unknown') c.pending++;
    else {
      c.healthy++;
      if (s === 'warning') c.warning++;
    }
  }
  return c;
}

export function documentTitle(c: Counts, connected: boolean, snapshot: boolean): string {
  const prefix = snapshot ? 'Snapshot: ' : '';
  if (!connected && !snapshot) return 'Disconnected ┊ Tilt';
  if (c.unhealthy > 0) return `${prefix}✖︎ ${c.unhealthy} ┊ Tilt`;
  if (c.healthy === c.total) return `${prefix}✔︎ ${c.healthy}/${c.total} ┊ Tilt`;
  return `${prefix}… ${c.healthy}/${c.total} ┊ Tilt`;
}

export function faviconColor(c: Counts, connected: boolean): 'green' | 'red' | 'gray' {
  if (!connected) return 'gray';
  if (c.unhealthy > 0) return 'red';
  if (c.healthy === c.total) return 'green';
  return 'gray';
}

/** A resource's type for the Type column. */
export function resourceType(r: UIResource): string {
  if (r.metadata.name === TILTFILE) return 'Tiltfile';
  const specs = r.status?.specs || [];
  const types = new Set(specs.map((s) => s.type));
  if (types.has('k8s')) return 'K8s';
  if (types.has('docker-compose') || types.has('dc')) return 'Compose';
  if (types.has('local')) return 'Local';
  return specs.length ? 'Unspecified' : 'Local';
}

export function podOrPid(r: UIResource): string {
  const pod = r.status?.k8sResourceInfo?.podName;
  if (pod) return pod;
  const pid = r.status?.localResourceInfo?.pid;
  if (pid !== undefined && pid !== null && pid !== '' && pid !== 0 && pid !== '0') return String(pid);
  return '';
}

export function lastUpdateTime(r: UIResource): string {
  const h = r.status?.buildHistory;
  const t = (h && h.length && (h[0].finishTime || h[0].startTime)) || r.status?.lastDeployTime || '';
  return t && !t.startsWith('0001') ? t : '';
}

export function isManualMode(mode: number | undefined): boolean {
  return mode === 1 || mode === 2;
}

/** Toggles auto↔manual and keeps the initial-build half (0↔1, 3↔2). */
export function toggledMode(mode: number | undefined): number {
  switch (mode || 0) {
    case 0:
      return 1;
    case 1:
      return 0;
    case 2:
      return 3;
    case 3:
      return 2;
  }
  return 1;
}

/** Label groups of a resource: every label key not in the tilt.dev/ namespace. */
export function groupsOf(r: UIResource): string[] {
  const labels = r.metadata.labels;
  if (!labels) return [];
  const out: string[] = [];
  for (const k in labels) if (!k.startsWith('tilt.dev/')) out.push(k);
  return out.sort();
}

export function timeAgo(iso: string, now: number): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (isNaN(t)) return '—';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return 'now';
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ago`;
  return `${Math.floor(h / 24)}d ago`;
}
