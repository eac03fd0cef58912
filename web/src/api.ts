// Write paths back to Tilt, and the error snackbar they report to.

import { changed, state } from './store';
import type { UIButton, UIInputSpec } from './types';

// ---- snackbar ----

export interface Snack {
  id: number;
  text: string;
  kind: 'error' | 'info';
}
export let snacks: Snack[] = [];
let snackId = 0;

export function showSnack(text: string, kind: 'error' | 'info' = 'error'): void {
  const id = ++snackId;
  snacks = [...snacks, { id, text, kind }].slice(-4);
  changed();
  setTimeout(() => dismissSnack(id), kind === 'error' ? 8000 : 3000);
}

export function dismissSnack(id: number): void {
  snacks = snacks.filter((s) => s.id !== id);
  changed();
}

async function errorText(resp: Response): Promise<string> {
  let body = '';
  try {
    body = (await resp.text()).trim();
  } catch {
    /* ignore */
  }
  if (body.startsWith('{')) {
    try {
      const j = JSON.parse(body);
      body = j.message || j.error || j.reason || body;
    } catch {
      /* keep text */
    }
  }
  return body || `${resp.status} ${resp.statusText}`;
}

async function post(url: string, body: unknown, what: string): Promise<boolean> {
  try {
    const resp = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!resp.ok) {
      showSnack(`${what} failed: ${await errorText(resp)}`);
      return false;
    }
    // Tilt answers some requests that it did not carry out with 200 and a message (a disabled resource).
    const text = (await resp.text().catch(() => '')).trim();
    if (text && !text.startsWith('{')) showSnack(`${what}: ${text}`, 'info');
    return true;
  } catch (e) {
    showSnack(`${what} failed: ${(e as Error).message}`);
    return false;
  }
}

export function triggerResource(name: string): Promise<boolean> {
  if (state.snapshotId) return Promise.resolve(false);
  return post('/api/trigger', { manifest_names: [name], build_reason: 16 }, `Trigger ${name}`);
}

export function setTriggerMode(names: string[], mode: number): Promise<boolean> {
  if (state.snapshotId) return Promise.resolve(false);
  return post('/api/override/trigger_mode', { manifest_names: names, trigger_mode: mode }, 'Changing the trigger mode');
}

// ---- UIButtons ----

/** `YYYY-MM-DDTHH:mm:ss.SSSSSSZ` (exactly six fractional digits, UTC). */
export function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export type InputValues = Record<string, string | boolean>;

export function inputStorageKey(b: UIButton): string {
  return `tilt-button-inputs:${b.metadata.name}`;
}

export function loadInputValues(b: UIButton): InputValues {
  try {
    return JSON.parse(localStorage.getItem(inputStorageKey(b)) || '{}');
  } catch {
    return {};
  }
}

export function saveInputValues(b: UIButton, v: InputValues): void {
  try {
    localStorage.setItem(inputStorageKey(b), JSON.stringify(v));
  } catch {
    /* storage full or off */
  }
}

function inputStatus(spec: UIInputSpec, values: InputValues): unknown {
  const v = values[spec.name];
  if (spec.hidden) return { name: spec.name, hidden: { value: spec.hidden.value ?? '' } };
  if (spec.bool) return { name: spec.name, bool: { value: typeof v === 'boolean' ? v : !!spec.bool.defaultValue } };
  if (spec.choice) {
    const choices = spec.choice.choices || [];
    const val = typeof v === 'string' && choices.includes(v) ? v : choices[0] || '';
    return { name: spec.name, choice: { value: val } };
  }
  const val = typeof v === 'string' ? v : spec.text?.defaultValue || '';
  return { name: spec.name, text: { value: val } };
}

function buttonUrl(name: string): string {
  return `/proxy/apis/tilt.dev/v1alpha1/uibuttons/${encodeURIComponent(name)}`;
}

async function putStatus(b: UIButton, values: InputValues): Promise<Response> {
  const body = {
    apiVersion: 'tilt.dev/v1alpha1',
    kind: 'UIButton',
    metadata: b.metadata,
    status: {
      lastClickedAt: microTime(),
      inputs: (b.spec?.inputs || []).map((s) => inputStatus(s, values)),
    },
  };
  return fetch(buttonUrl(b.metadata.name) + '/status', {
    method: 'PUT',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Clicks a UIButton: writes its status; on 409 refetches it and retries once. */
export async function clickButton(b: UIButton, values: InputValues = {}, quiet = false): Promise<boolean> {
  if (state.snapshotId) return false;
  try {
    let resp = await putStatus(b, values);
    if (resp.status === 409) {
      const fresh = await fetch(buttonUrl(b.metadata.name), { credentials: 'same-origin' });
      if (fresh.ok) {
        const nb = (await fresh.json()) as UIButton;
        resp = await putStatus({ ...b, metadata: nb.metadata, spec: nb.spec || b.spec }, values);
      }
    }
    if (!resp.ok) {
      if (!quiet) showSnack(`${b.spec?.text || b.metadata.name} failed: ${await errorText(resp)}`);
      return false;
    }
    return true;
  } catch (e) {
    if (!quiet) showSnack(`${b.spec?.text || b.metadata.name} failed: ${(e as Error).message}`);
    return false;
  }
}

/** Enables or disables resources by clicking their DisableToggle buttons (only those that would change). */
export async function setEnabled(names: string[], enable: boolean): Promise<void> {
  const todo: UIButton[] = [];
  for (const n of names) {
    const r = state.resourceMap.get(n);
    const b = state.buttonIndex.disable.get(n);
    if (!r || !b) continue;
    const disabled = r.status?.disableStatus?.state === 'Disabled';
    if (disabled === !enable) continue;
    todo.push(b);
    state.pendingToggle.set(n, enable ? 'enable' : 'disable');
  }
  if (!todo.length) {
    if (names.length) showSnack('Nothing to ' + (enable ? 'enable' : 'disable'), 'info');
    return;
  }
  changed();
  let failed = 0;
  let firstErr = '';
  const queue = todo.slice();
  const worker = async () => {
    while (queue.length) {
      const b = queue.shift()!;
      const ok = await clickButton(b, {}, true);
      if (!ok) {
        failed++;
        state.pendingToggle.delete(b.spec?.location?.componentID || '');
        firstErr = firstErr || b.metadata.name;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
  performance.mark('tilt-bulk-sent');
  if (failed) {
    showSnack(`${enable ? 'Enable' : 'Disable'} failed for ${failed} resource(s) (first: ${firstErr})`);
    changed();
  }
}
