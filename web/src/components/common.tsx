import { memo } from 'preact/compat';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  clickButton,
  loadInputValues,
  saveInputValues,
  setEnabled,
  setTriggerMode,
  showSnack,
  triggerResource,
  type InputValues,
} from '../api';
import { isBuilding, isManualMode, timeAgo, toggledMode, type Combined } from '../status';
import { state } from '../store';
import type { UIButton, UIResource } from '../types';

const GLYPH: Record<Combined, string> = {
  disabled: '⊘',
  building: '◌',
  pending: '◔',
  error: '✖',
  healthy: '●',
  warning: '▲',
  unhealthy: '✖',
  unknown: '?',
  none: '○',
};

export function StatusIcon({ status }: { status: Combined }) {
  return (
    <span class={`sicon s-${status}`} aria-hidden="true">
      {GLYPH[status]}
    </span>
  );
}

// One ticker for every "x ago" cell.
let now = Date.now();
const tickListeners = new Set<() => void>();
setInterval(() => {
  now = Date.now();
  for (const l of tickListeners) l();
}, 10_000);

export function TimeAgo({ iso }: { iso: string }) {
  const [, setT] = useState(0);
  useEffect(() => {
    const l = () => setT(now);
    tickListeners.add(l);
    return () => {
      tickListeners.delete(l);
    };
  }, []);
  return <span title={iso}>{timeAgo(iso, Math.max(now, Date.now()))}</span>;
}

export const TriggerButton = memo(function TriggerButton({ r, compact }: { r: UIResource; compact?: boolean }) {
  const s = r.status || {};
  const name = r.metadata.name;
  const building = isBuilding(r) || s.updateStatus === 'in_progress';
  const queued = !!s.queued;
  const manual = isManualMode(s.triggerMode);
  const needsManual = manual && !!s.hasPendingChanges && !building && !queued;
  const disabled = s.disableStatus?.state === 'Disabled' || !!state.snapshotId;
  let cls = 'trigger';
  let title = `Trigger an update of ${name}`;
  if (building) {
    cls += ' building';
    title = `${name} is updating`;
  } else if (queued) {
    cls += ' queued';
    title = `An update of ${name} is queued`;
  } else if (needsManual) {
    cls += ' needs-manual';
    title = `${name} has changes: trigger an update`;
  }
  const stop = state.buttonIndex.stop.get(name);
  return (
    <span class="trigger-wrap">
      <button
        class={cls}
        data-testid={`trigger-${name}`}
        title={title}
        aria-label={title}
        disabled={disabled || building || queued}
        onClick={(e) => {
          e.stopPropagation();
          triggerResource(name);
        }}
      >
        {building ? '⟳' : queued ? '⋯' : '↻'}
        {compact ? null : <span class="btn-label"> Trigger</span>}
      </button>
      {building && stop && !state.snapshotId ? (
        <button
          class="stop-build"
          title={`Stop the update of ${name}`}
          onClick={(e) => {
            e.stopPropagation();
            clickButton(stop);
          }}
        >
          ■
        </button>
      ) : null}
    </span>
  );
});

export const ModeToggle = memo(function ModeToggle({ name, mode }: { name: string; mode: number | undefined }) {
  const manual = isManualMode(mode);
  return (
    <button
      class={`mode ${manual ? 'manual' : 'auto'}`}
      data-testid={`mode-${name}`}
      disabled={!!state.snapshotId}
      title={manual ? 'Manual: updates only when triggered. Click for auto.' : 'Auto: updates on file changes. Click for manual.'}
      onClick={(e) => {
        e.stopPropagation();
        setTriggerMode([name], toggledMode(mode));
      }}
    >
      {manual ? 'Manual' : 'Auto'}
    </button>
  );
});

export function DisableToggle({ r }: { r: UIResource }) {
  const name = r.metadata.name;
  const b = state.buttonIndex.disable.get(name);
  const [confirm, setConfirm] = useState(false);
  if (!b) return null;
  const disabled = r.status?.disableStatus?.state === 'Disabled';
  const pending = state.pendingToggle.has(name);
  const label = disabled ? 'Enable Resource' : 'Disable Resource';
  if (confirm) {
    return (
      <span class="confirm">
        <button
          class="danger"
          data-testid={`disable-confirm-${name}`}
          onClick={() => {
            setConfirm(false);
            setEnabled([name], true === disabled);
          }}
        >
          Confirm disable
        </button>
        <button onClick={() => setConfirm(false)}>Cancel</button>
      </span>
    );
  }
  return (
    <button
      class={`toggle-disable ${disabled ? 'is-disabled' : ''}`}
      data-testid={`disable-toggle-${name}`}
      disabled={pending || !!state.snapshotId}
      onClick={() => {
        if (!disabled && b.spec?.requiresConfirmation) setConfirm(true);
        else setEnabled([name], disabled);
      }}
    >
      {pending ? '…' : label}
    </button>
  );
}

/** A custom UIButton, with its inputs in an options pop-up and two-step confirmation when asked. */
export const ApiButton = memo(function ApiButton({ b }: { b: UIButton }) {
  const spec = b.spec || {};
  const inputs = (spec.inputs || []).filter((i) => !i.hidden);
  const [open, setOpen] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [values, setValues] = useState<InputValues>(() => loadInputValues(b));
  const ref = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    if (!open) return;
    const h = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', h);
    return () => document.removeEventListener('mousedown', h);
  }, [open]);
  const click = async () => {
    setBusy(true);
    const ok = await clickButton(b, values);
    setBusy(false);
    setConfirming(false);
    if (ok) showSnack(`${spec.text || b.metadata.name}: clicked`, 'info');
  };
  const setValue = (k: string, v: string | boolean) => {
    const nv = { ...values, [k]: v };
    setValues(nv);
    saveInputValues(b, nv);
  };
  const text = spec.text || b.metadata.name;
  const off = !!spec.disabled || busy || !!state.snapshotId;
  return (
    <span class="apibutton" ref={ref} data-testid={`button-${b.metadata.name}`}>
      {confirming ? (
        <>
          <button class="danger" onClick={click} disabled={off}>
            Confirm
          </button>
          <button onClick={() => setConfirming(false)} title="Cancel">
            ✕
          </button>
        </>
      ) : (
        <button
          disabled={off}
          title={spec.iconName ? `${text} (${spec.iconName})` : text}
          onClick={(e) => {
            e.stopPropagation();
            if (spec.requiresConfirmation) setConfirming(true);
            else click();
          }}
        >
          {text}
        </button>
      )}
      {inputs.length ? (
        <button class="options" title="Options" aria-label={`${text} options`} onClick={() => setOpen(!open)} disabled={off}>
          ▾
        </button>
      ) : null}
      {open ? (
        <div class="popup" onClick={(e) => e.stopPropagation()}>
          {inputs.map((i) => {
            const label = i.label || i.name;
            if (i.bool) {
              const v = values[i.name];
              return (
                <label class="input-row bool" key={i.name}>
                  <input
                    type="checkbox"
                    checked={typeof v === 'boolean' ? v : !!i.bool.defaultValue}
                    onChange={(e) => setValue(i.name, (e.currentTarget as HTMLInputElement).checked)}
                  />{' '}
                  {label}
                </label>
              );
            }
            if (i.choice) {
              const choices = i.choice.choices || [];
              const v = values[i.name];
              return (
                <label class="input-row" key={i.name}>
                  {label}
                  <select
                    value={typeof v === 'string' && choices.includes(v) ? v : choices[0]}
                    onChange={(e) => setValue(i.name, (e.currentTarget as HTMLSelectElement).value)}
                  >
                    {choices.map((c) => (
                      <option key={c} value={c}>
                        {c}
                      </option>
                    ))}
                  </select>
                </label>
              );
            }
            const v = values[i.name];
            return (
              <label class="input-row" key={i.name}>
                {label}
                <input
                  type="text"
                  value={typeof v === 'string' ? v : i.text?.defaultValue || ''}
                  placeholder={i.text?.placeholder || ''}
                  onInput={(e) => setValue(i.name, (e.currentTarget as HTMLInputElement).value)}
                />
              </label>
            );
          })}
          <button
            onClick={() => {
              setOpen(false);
              if (spec.requiresConfirmation) setConfirming(true);
              else click();
            }}
          >
            {text}
          </button>
        </div>
      ) : null}
    </span>
  );
});

export function CopyButton({ text, label }: { text: string; label?: string }) {
  return (
    <button
      class="copy"
      title={`Copy ${text}`}
      onClick={async (e) => {
        e.stopPropagation();
        if (await copyText(text)) showSnack(`Copied ${text}`, 'info');
      }}
    >
      {label || 'Copy'}
    </button>
  );
}

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    if (!ok) showSnack('Copy failed: the clipboard is not available');
    return ok;
  }
}

export function Endpoints({ r }: { r: UIResource }) {
  const links = r.status?.endpointLinks || [];
  if (!links.length) return null;
  return (
    <span class="endpoints">
      {links.map((l) => (
        <a key={l.url} href={l.url} target="_blank" rel="noopener noreferrer" onClick={(e) => e.stopPropagation()}>
          {l.name || l.url.replace(/^https?:\/\//, '')}
        </a>
      ))}
    </span>
  );
}
