// The windowed log renderer: only the lines in view are in the DOM. Written imperatively (no virtual DOM):
// appends are batched and rendered once per animation frame.

import { ansiToHtml, escapeHtml, stripAnsi } from './ansi';
import { compileFilter, ERROR, WARN, type LogFilter, type LogStore } from './logstore';

export const LINE_HEIGHT = 18;
const OVERSCAN = 20;
const PREFIX_WIDTH = 16;

export interface ViewOptions {
  prefix: boolean;
  timestamps: boolean;
  wrap: boolean;
}

function formatTime(t: string): string {
  if (!t) return '        ';
  const d = new Date(t);
  if (isNaN(d.getTime())) return '        ';
  const p = (n: number) => (n < 10 ? '0' + n : '' + n);
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function padName(name: string): string {
  const n = name.length > PREFIX_WIDTH - 1 ? name.slice(0, PREFIX_WIDTH - 2) + '…' : name;
  return n + ' '.repeat(Math.max(1, PREFIX_WIDTH - n.length));
}

export class LogViewer {
  readonly root: HTMLDivElement;
  private spacer: HTMLDivElement;
  private content: HTMLDivElement;
  private store: LogStore;
  private filter: LogFilter = {};
  private opts: ViewOptions = { prefix: false, timestamps: false, wrap: false };
  private pred: (i: number) => boolean = () => true;
  /** Global ids of the lines that pass the filter. */
  ids: number[] = [];
  /** Cumulative row offsets (wrap mode): rowStart[j] = rows before ids[j], absolute. */
  private rowStart: number[] = [];
  private rowEnd = 0;
  private scannedTo = 0;
  private epoch = -1;
  private raf = 0;
  private follow = true;
  private programmaticTop = -1;
  private charsPerRow = 0;
  private charWidth = 7.2;
  private lastKey = '';
  private unsub: () => void;
  private resizeObs: ResizeObserver | null = null;
  onFollowChange: (follow: boolean) => void = () => {};
  onCountChange: (n: number) => void = () => {};
  /** Time the last full refilter took, in ms (read by tests and the bench). */
  lastFilterMs = 0;

  constructor(root: HTMLDivElement, store: LogStore) {
    this.root = root;
    this.store = store;
    root.classList.add('logview');
    root.innerHTML = '';
    this.spacer = document.createElement('div');
    this.spacer.className = 'log-spacer';
    this.content = document.createElement('div');
    this.content.className = 'log-lines';
    this.spacer.appendChild(this.content);
    root.appendChild(this.spacer);
    root.addEventListener('scroll', this.onScroll, { passive: true });
    this.unsub = store.subscribe(this.schedule);
    if (typeof ResizeObserver === 'function') {
      this.resizeObs = new ResizeObserver(() => {
        if (this.measure()) this.refilter();
        this.schedule();
      });
      this.resizeObs.observe(root);
    }
    this.measure();
  }

  destroy(): void {
    this.unsub();
    this.resizeObs?.disconnect();
    this.root.removeEventListener('scroll', this.onScroll);
    if (this.raf) cancelAnimationFrame(this.raf);
  }

  setStore(store: LogStore): void {
    if (store === this.store) return;
    this.unsub();
    this.store = store;
    this.unsub = store.subscribe(this.schedule);
    this.refilter();
  }

  setFilter(f: LogFilter): void {
    this.filter = f;
    this.refilter();
  }

  setOptions(o: ViewOptions): void {
    const changed = o.prefix !== this.opts.prefix || o.timestamps !== this.opts.timestamps || o.wrap !== this.opts.wrap;
    this.opts = o;
    this.root.classList.toggle('wrap', o.wrap);
    if (changed) {
      this.measure();
      this.refilter();
    }
  }

  private measure(): boolean {
    const probe = document.createElement('span');
    probe.className = 'log-probe';
    probe.textContent = 'x'.repeat(100);
    this.content.appendChild(probe);
    const w = probe.getBoundingClientRect().width / 100;
    probe.remove();
    if (w > 0) this.charWidth = w;
    const avail = this.root.clientWidth - 16;
    const cpr = Math.max(10, Math.floor(avail / this.charWidth));
    const changed = this.opts.wrap && cpr !== this.charsPerRow;
    this.charsPerRow = cpr;
    return changed;
  }

  private rowsOf(i: number): number {
    if (!this.opts.wrap) return 1;
    const s = this.store;
    const t = s.texts[i];
    let len = t.indexOf('\x1b') < 0 ? t.length : stripAnsi(t).length;
    if (this.opts.prefix) len += PREFIX_WIDTH + 2;
    if (this.opts.timestamps) len += 9;
    return len <= this.charsPerRow ? 1 : Math.ceil(len / this.charsPerRow);
  }

  /** Recomputes the filtered line list over the whole store. */
  refilter(): void {
    const t0 = performance.now();
    const s = this.store;
    this.pred = compileFilter(s, this.filter);
    this.ids = [];
    this.rowStart = [];
    this.rowEnd = 0;
    this.scannedTo = s.firstId;
    this.epoch = s.epoch;
    this.scan();
    this.lastFilterMs = performance.now() - t0;
    this.lastKey = '';
    this.onCountChange(this.ids.length);
    this.schedule();
  }

  private scan(): void {
    const s = this.store;
    const first = s.firstId;
    const end = s.endId;
    const pred = this.pred;
    const ids = this.ids;
    if (this.opts.wrap) {
      const rowStart = this.rowStart;
      let rowEnd = this.rowEnd;
      for (let id = Math.max(this.scannedTo, first); id < end; id++) {
        const i = id - first;
        if (pred(i)) {
          ids.push(id);
          rowStart.push(rowEnd);
          rowEnd += this.rowsOf(i);
        }
      }
      this.rowEnd = rowEnd;
    } else {
      for (let id = Math.max(this.scannedTo, first); id < end; id++) if (pred(id - first)) ids.push(id);
    }
    this.scannedTo = end;
  }

  /** Rows before line j (relative to the first kept line), and the total. Without wrapping a line is a row. */
  private rowOf(j: number): number {
    if (!this.opts.wrap) return j;
    if (j >= this.rowStart.length) return this.totalRows();
    return this.rowStart[j] - this.rowStart[0];
  }

  schedule = (): void => {
    if (this.raf) return;
    this.raf = requestAnimationFrame(this.update);
  };

  private update = (): void => {
    this.raf = 0;
    const s = this.store;
    if (s.epoch !== this.epoch) {
      this.refilter();
      return;
    }
    const prevCount = this.ids.length;
    this.scan();
    // Drop lines the store truncated away.
    if (this.ids.length && this.ids[0] < s.firstId) {
      let lo = 0;
      let hi = this.ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.ids[mid] < s.firstId) lo = mid + 1;
        else hi = mid;
      }
      this.ids.splice(0, lo);
      if (this.opts.wrap) this.rowStart.splice(0, lo);
      if (!this.ids.length) this.rowEnd = 0;
    }
    if (this.ids.length !== prevCount) this.onCountChange(this.ids.length);
    this.render();
  };

  private totalRows(): number {
    if (!this.opts.wrap) return this.ids.length;
    return this.ids.length ? this.rowEnd - this.rowStart[0] : 0;
  }

  private render(): void {
    const total = this.totalRows();
    const height = total * LINE_HEIGHT;
    this.spacer.style.height = height + 'px';
    const viewH = this.root.clientHeight || 600;
    if (this.follow) {
      const top = Math.max(0, height - viewH);
      if (Math.abs(this.root.scrollTop - top) > 1) {
        this.root.scrollTop = top;
        this.programmaticTop = this.root.scrollTop;
      }
    }
    const scrollTop = this.root.scrollTop;
    const firstRow = Math.max(0, Math.floor(scrollTop / LINE_HEIGHT) - OVERSCAN);
    const lastRow = Math.min(total, Math.ceil((scrollTop + viewH) / LINE_HEIGHT) + OVERSCAN);
    // The first line whose last row reaches firstRow, then every line that starts before lastRow.
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.rowOf(mid + 1) <= firstRow) lo = mid + 1;
      else hi = mid;
    }
    const from = lo;
    let to = from;
    while (to < this.ids.length && this.rowOf(to) < lastRow) to++;
    const key = `${from}:${to}:${this.ids[from]}:${this.ids[to - 1]}:${s(this.store)}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.content.style.transform = `translateY(${this.rowOf(from) * LINE_HEIGHT}px)`;
    const st = this.store;
    const first = st.firstId;
    let html = '';
    for (let j = from; j < to; j++) {
      const i = this.ids[j] - first;
      const lvl = st.levels[i];
      html += `<div class="ll${lvl === WARN ? ' lw' : lvl === ERROR ? ' le' : ''}${st.builds[i] ? ' lb' : ''}">`;
      if (this.opts.timestamps) html += `<span class="lt">${formatTime(st.times[i])} </span>`;
      if (this.opts.prefix) {
        const m = st.manifests[i];
        html += `<span class="lp">${escapeHtml(padName(m || '(Tiltfile)'))}┊ </span>`;
      }
      html += ansiToHtml(st.texts[i]) + '</div>';
    }
    this.content.innerHTML = html;
  }

  private onScroll = (): void => {
    const r = this.root;
    if (this.programmaticTop >= 0 && Math.abs(r.scrollTop - this.programmaticTop) < 2) {
      this.schedule();
      return;
    }
    this.programmaticTop = -1;
    const atBottom = r.scrollTop + r.clientHeight >= r.scrollHeight - LINE_HEIGHT * 2;
    if (atBottom !== this.follow) {
      this.follow = atBottom;
      this.onFollowChange(atBottom);
    }
    this.schedule();
  };

  scrollToBottom(): void {
    this.follow = true;
    this.onFollowChange(true);
    this.lastKey = '';
    this.schedule();
  }

  /** The filtered lines as plain text (for Copy logs). */
  text(): string {
    const st = this.store;
    const out: string[] = [];
    for (const id of this.ids) {
      const i = id - st.firstId;
      if (i < 0) continue;
      let line = stripAnsi(st.texts[i]);
      if (this.opts.prefix) line = padName(st.manifests[i] || '(Tiltfile)') + '┊ ' + line;
      if (this.opts.timestamps) line = formatTime(st.times[i]) + ' ' + line;
      out.push(line);
    }
    return out.join('\n');
  }
}

function s(store: LogStore): string {
  return `${store.firstId}:${store.endId}:${store.epoch}:${store.bytes}`;
}
