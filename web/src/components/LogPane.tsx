import { useEffect, useRef, useState } from 'preact/hooks';
import { showSnack } from '../api';
import type { LogFilter } from '../logstore';
import { LogViewer } from '../logview';
import { logPref, setLogPref } from '../prefs';
import { state, useAppState } from '../store';
import { copyText } from './common';

export const ALL = '(all)';

export function readFilterFromUrl(): LogFilter {
  const q = new URLSearchParams(location.search);
  const level = q.get('level');
  const source = q.get('source');
  return {
    level: level === 'warn' || level === 'error' ? level : '',
    source: source === 'build' || source === 'runtime' ? source : '',
    term: q.get('term') || '',
  };
}

function writeFilterToUrl(f: LogFilter): void {
  const q = new URLSearchParams(location.search);
  const set = (k: string, v: string | undefined) => (v ? q.set(k, v) : q.delete(k));
  set('level', f.level);
  set('source', f.source);
  set('term', f.term);
  const qs = q.toString();
  history.replaceState(history.state, '', location.pathname + (qs ? '?' + qs : '') + location.hash);
}

// The live viewer, for the keyboard shortcuts (clear) and tests.
export let activeViewer: LogViewer | null = null;
export let activeClear: (() => void) | null = null;
let termInput: HTMLInputElement | null = null;

export function focusLogFilter(): boolean {
  if (!termInput) return false;
  termInput.focus();
  termInput.select();
  return true;
}

export function LogPane({ name }: { name: string }) {
  const st = useAppState();
  const hostRef = useRef<HTMLDivElement>(null);
  const viewerRef = useRef<LogViewer | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const [filter, setFilter] = useState<LogFilter>(() => readFilterFromUrl());
  const [termText, setTermText] = useState(filter.term || '');
  const [follow, setFollow] = useState(true);
  const [count, setCount] = useState(0);
  const timestamps = logPref('timestamps');
  const wrap = logPref('wrap');
  const manifest = name === ALL ? undefined : name;

  useEffect(() => {
    const v = new LogViewer(hostRef.current!, state.logs);
    viewerRef.current = v;
    activeViewer = v;
    (window as unknown as { __tiltLogViewer: LogViewer }).__tiltLogViewer = v;
    v.onFollowChange = setFollow;
    v.onCountChange = setCount;
    return () => {
      v.destroy();
      if (activeViewer === v) activeViewer = null;
    };
  }, []);

  useEffect(() => {
    termInput = inputRef.current;
    return () => {
      if (termInput === inputRef.current) termInput = null;
    };
  }, []);

  useEffect(() => {
    viewerRef.current?.setStore(st.logs);
  }, [st.logs]);

  useEffect(() => {
    viewerRef.current?.setOptions({ prefix: name === ALL, timestamps, wrap });
  }, [name, timestamps, wrap]);

  useEffect(() => {
    viewerRef.current?.setFilter({ ...filter, manifest });
    setCount(viewerRef.current?.ids.length || 0);
  }, [filter.level, filter.source, filter.term, manifest]);

  // The term is applied after a short pause in typing; level/source at once.
  useEffect(() => {
    if (termText === (filter.term || '')) return;
    const t = setTimeout(() => update({ term: termText }), 120);
    return () => clearTimeout(t);
  }, [termText]);

  const update = (p: Partial<LogFilter>) => {
    const nf = { ...filter, ...p };
    setFilter(nf);
    writeFilterToUrl(nf);
  };

  const clear = () => {
    state.logs.clear(manifest === undefined ? undefined : manifest === '(Tiltfile)' ? '' : manifest);
    if (manifest === '(Tiltfile)') state.logs.clear('(Tiltfile)');
    state.warnVersion++;
  };
  activeClear = clear;

  let badRegex = false;
  const m = /^\/(.+)\/$/.exec((filter.term || '').trim());
  if (m) {
    try {
      new RegExp(m[1]);
    } catch {
      badRegex = true;
    }
  }

  return (
    <div class="logpane">
      <div class="log-toolbar">
        <select
          aria-label="Log level"
          data-testid="log-level"
          value={filter.level || ''}
          onChange={(e) => update({ level: (e.currentTarget as HTMLSelectElement).value as LogFilter['level'] })}
        >
          <option value="">All levels</option>
          <option value="warn">Warnings</option>
          <option value="error">Errors</option>
        </select>
        <select
          aria-label="Log source"
          data-testid="log-source"
          value={filter.source || ''}
          onChange={(e) => update({ source: (e.currentTarget as HTMLSelectElement).value as LogFilter['source'] })}
        >
          <option value="">All sources</option>
          <option value="build">Build</option>
          <option value="runtime">Runtime</option>
        </select>
        <input
          ref={inputRef}
          type="search"
          class={`log-term${badRegex ? ' bad' : ''}`}
          data-testid="log-term"
          placeholder="Filter logs (text or /regex/)"
          value={termText}
          onInput={(e) => setTermText((e.currentTarget as HTMLInputElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') update({ term: termText });
            if (e.key === 'Escape') (e.currentTarget as HTMLInputElement).blur();
          }}
        />
        <label class="check" title="Show the time of each line">
          <input type="checkbox" checked={timestamps} onChange={() => setLogPref('timestamps', !timestamps)} /> Timestamps
        </label>
        <label class="check" title="Wrap long lines">
          <input type="checkbox" checked={wrap} onChange={() => setLogPref('wrap', !wrap)} /> Wrap
        </label>
        <span class="spacer" />
        <span class="muted log-count" data-testid="log-count">
          {count} line{count === 1 ? '' : 's'}
        </span>
        <button
          onClick={async () => {
            const v = viewerRef.current;
            if (v && (await copyText(v.text()))) showSnack(`Copied ${v.ids.length} lines`, 'info');
          }}
        >
          Copy logs
        </button>
        <button onClick={clear} title="Clear logs (Ctrl/Cmd+Backspace)" data-testid="clear-logs">
          Clear logs
        </button>
      </div>
      <div class="log-host" ref={hostRef} data-testid="log-lines" tabIndex={0} />
      {!follow ? (
        <button class="jump" onClick={() => viewerRef.current?.scrollToBottom()}>
          ↓ Follow
        </button>
      ) : null}
    </div>
  );
}
