// The client log store: every line in plain parallel arrays, addressed by a global line id that stays
// stable when old lines are dropped from the front (truncation moves `firstId`).

import type { LogList, LogSegment } from './types';

/** Segments split into lines per task when a message brings many. */
const SLICE = 1500;

export const INFO = 0;
export const WARN = 1;
export const ERROR = 2;

export const MAX_LOG_BYTES = 2_000_000;

export function isBuildSpan(spanId: string): boolean {
  return spanId.startsWith('build:') || spanId.startsWith('cmdimage:');
}

function levelOf(level: string | undefined): number {
  if (level === 'WARN') return WARN;
  if (level === 'ERROR') return ERROR;
  return INFO;
}

type Listener = () => void;

export class LogStore {
  firstId = 0;
  texts: string[] = [];
  manifests: string[] = [];
  spanIds: string[] = [];
  levels: number[] = [];
  times: string[] = [];
  builds: boolean[] = [];
  bytes = 0;
  checkpoint = 0;
  /** Bumped when lines are removed other than from the front (clear), so views refilter. */
  epoch = 0;
  maxBytes: number;
  spans = new Map<string, string>();
  warnCounts = new Map<string, number>();
  private openLine = new Map<string, number>();
  private listeners = new Set<Listener>();

  constructor(maxBytes = MAX_LOG_BYTES) {
    this.maxBytes = maxBytes;
  }

  get endId(): number {
    return this.firstId + this.texts.length;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  notify(): void {
    for (const l of this.listeners) l();
  }

  /** Segments received but not yet split into lines (a large first message is taken in slices). */
  private queue: LogSegment[] = [];
  private queuePos = 0;
  private pumping = false;
  /** Called after lines were added by a later slice, and when warning counts change. */
  onChange: (warnChanged: boolean) => void = () => {};
  warnTotal = 0;

  /** Applies one View's logList. Returns true when anything changed now (later slices call onChange). */
  append(list: LogList | undefined): boolean {
    if (!list) return false;
    if (list.spans) {
      for (const id in list.spans) this.spans.set(id, list.spans[id]?.manifestName || '');
    }
    let segments = list.segments || [];
    const from = list.fromCheckpoint;
    const to = list.toCheckpoint;
    if (typeof from === 'number' && from >= 0 && from < this.checkpoint) {
      segments = segments.slice(this.checkpoint - from);
    }
    if (typeof to === 'number' && to > 0) this.checkpoint = Math.max(this.checkpoint, to);
    if (segments.length === 0) return !!list.spans;
    if (this.queuePos < this.queue.length || segments.length > SLICE) {
      // Keep order behind what is still queued; work in slices so no task runs long.
      if (this.queuePos >= this.queue.length) {
        this.queue = [];
        this.queuePos = 0;
      }
      for (const seg of segments) this.queue.push(seg);
      return this.pump();
    }
    for (const seg of segments) this.addSegment(seg.spanId || '_', seg.text || '', seg.level, seg.time || '');
    if (this.bytes > this.maxBytes) this.truncate();
    return true;
  }

  private pump(): boolean {
    const end = Math.min(this.queue.length, this.queuePos + SLICE);
    const warn = this.warnTotal;
    for (let i = this.queuePos; i < end; i++) {
      const seg = this.queue[i];
      this.addSegment(seg.spanId || '_', seg.text || '', seg.level, seg.time || '');
    }
    this.queuePos = end;
    if (this.bytes > this.maxBytes) this.truncate();
    if (this.queuePos >= this.queue.length) {
      this.queue = [];
      this.queuePos = 0;
    } else if (!this.pumping) {
      this.pumping = true;
      setTimeout(() => {
        this.pumping = false;
        this.pump();
        this.notify();
        this.onChange(this.warnTotal !== warn);
      }, 0);
    }
    return true;
  }

  private addSegment(spanId: string, text: string, level: string | undefined, time: string): void {
    const manifest = this.spans.get(spanId) ?? '';
    const lvl = levelOf(level);
    if (lvl === WARN) {
      this.warnCounts.set(manifest, (this.warnCounts.get(manifest) || 0) + 1);
      this.warnTotal++;
    }
    this.bytes += text.length;
    const build = isBuildSpan(spanId);
    let start = 0;
    const open = this.openLine.get(spanId);
    if (open !== undefined) {
      this.openLine.delete(spanId);
      const i = open - this.firstId;
      if (i >= 0 && i < this.texts.length) {
        let nl = text.indexOf('\n');
        const piece = stripCR(nl < 0 ? text : text.slice(0, nl));
        this.texts[i] += piece;
        if (lvl > this.levels[i]) this.levels[i] = lvl;
        if (nl < 0) {
          this.openLine.set(spanId, open);
          return;
        }
        start = nl + 1;
      }
    }
    const n = text.length;
    while (start < n) {
      const nl = text.indexOf('\n', start);
      const end = nl < 0 ? n : nl;
      this.texts.push(stripCR(text.slice(start, end)));
      this.manifests.push(manifest);
      this.spanIds.push(spanId);
      this.levels.push(lvl);
      this.times.push(time);
      this.builds.push(build);
      if (nl < 0) {
        this.openLine.set(spanId, this.endId - 1);
        break;
      }
      start = nl + 1;
    }
  }

  /** Drops lines from the front until the store holds at most half its cap. */
  private truncate(): void {
    const target = this.maxBytes / 2;
    let drop = 0;
    let bytes = this.bytes;
    while (drop < this.texts.length && bytes > target) {
      bytes -= this.texts[drop].length + 1;
      drop++;
    }
    this.bytes = Math.max(0, bytes);
    this.texts.splice(0, drop);
    this.manifests.splice(0, drop);
    this.spanIds.splice(0, drop);
    this.levels.splice(0, drop);
    this.times.splice(0, drop);
    this.builds.splice(0, drop);
    this.firstId += drop;
  }

  /** Client-side clear: all lines, or the lines of one resource ('' = global/Tiltfile logs). */
  clear(manifest?: string): void {
    if (manifest === undefined) {
      this.firstId = this.endId;
      this.texts = [];
      this.manifests = [];
      this.spanIds = [];
      this.levels = [];
      this.times = [];
      this.builds = [];
      this.bytes = 0;
      this.warnCounts.clear();
      this.warnTotal = 0;
      this.openLine.clear();
    } else {
      const keep: number[] = [];
      for (let i = 0; i < this.texts.length; i++) if (this.manifests[i] !== manifest) keep.push(i);
      const pick = <T>(a: T[]) => keep.map((i) => a[i]);
      this.texts = pick(this.texts);
      this.manifests = pick(this.manifests);
      this.spanIds = pick(this.spanIds);
      this.levels = pick(this.levels);
      this.times = pick(this.times);
      this.builds = pick(this.builds);
      this.bytes = this.texts.reduce((s, t) => s + t.length + 1, 0);
      this.warnTotal -= this.warnCounts.get(manifest) || 0;
      this.warnCounts.delete(manifest);
      this.openLine.clear();
    }
    this.epoch++;
    this.notify();
  }
}

function stripCR(s: string): string {
  return s.length > 0 && s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s;
}

export interface LogFilter {
  manifest?: string; // undefined = all resources
  level?: '' | 'warn' | 'error';
  source?: '' | 'build' | 'runtime';
  term?: string;
}

/** Compiles a filter to a predicate over line indexes of the store (index = id - firstId). */
export function compileFilter(store: LogStore, f: LogFilter): (i: number) => boolean {
  const manifest = f.manifest;
  const level = f.level === 'warn' ? WARN : f.level === 'error' ? ERROR : -1;
  const source = f.source || '';
  let termTest: ((i: number) => boolean) | null = null;
  const term = (f.term || '').trim();
  if (term) {
    const m = /^\/(.+)\/$/.exec(term);
    let re: RegExp | null = null;
    if (m) {
      try {
        re = new RegExp(m[1], 'i');
      } catch {
        re = null;
      }
    }
    // A case-insensitive regex is several times faster than lowercasing every line.
    const r = re || new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    const texts = store.texts;
    termTest = (i) => r.test(texts[i]);
  }
  const tiltfile = manifest === '(Tiltfile)';
  return (i) => {
    if (manifest !== undefined) {
      const m = store.manifests[i];
      if (m !== manifest && !(tiltfile && m === '')) return false;
    }
    if (level >= 0 && store.levels[i] !== level) return false;
    if (source === 'build' && !store.builds[i]) return false;
    if (source === 'runtime' && store.builds[i]) return false;
    if (termTest && !termTest(i)) return false;
    return true;
  };
}
