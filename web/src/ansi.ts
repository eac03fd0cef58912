// A small ANSI SGR parser: colours (16, 256, truecolour) and bold, rendered to escaped HTML.
// Other escape sequences are dropped.

const ESC_RE = /[&<>"]/g;
const ESC_MAP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

export function escapeHtml(s: string): string {
  return s.replace(ESC_RE, (c) => ESC_MAP[c]);
}

// eslint-disable-next-line no-control-regex
const CSI_RE = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b./g;

interface Sgr {
  fg: string; // class suffix or css colour
  bg: string;
  bold: boolean;
}

function color256(n: number): string {
  if (n < 16) return 'c' + n;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  n -= 16;
  const steps = [0, 95, 135, 175, 215, 255];
  return `rgb(${steps[Math.floor(n / 36)]},${steps[Math.floor(n / 6) % 6]},${steps[n % 6]})`;
}

function applyCodes(state: Sgr, params: string): void {
  const codes = params === '' ? [0] : params.split(';').map((p) => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) {
      state.fg = '';
      state.bg = '';
      state.bold = false;
    } else if (c === 1) state.bold = true;
    else if (c === 22) state.bold = false;
    else if (c >= 30 && c <= 37) state.fg = 'c' + (c - 30);
    else if (c >= 90 && c <= 97) state.fg = 'c' + (c - 90 + 8);
    else if (c === 39) state.fg = '';
    else if (c >= 40 && c <= 47) state.bg = 'c' + (c - 40);
    else if (c >= 100 && c <= 107) state.bg = 'c' + (c - 100 + 8);
    else if (c === 49) state.bg = '';
    else if (c === 38 || c === 48) {
      let col = '';
      if (codes[i + 1] === 5 && i + 2 < codes.length) {
        col = color256(codes[i + 2]);
        i += 2;
      } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
        col = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`;
        i += 4;
      } else break;
      if (c === 38) state.fg = col;
      else state.bg = col;
    }
  }
}

function open(state: Sgr): string {
  if (!state.fg && !state.bg && !state.bold) return '';
  const cls: string[] = [];
  const style: string[] = [];
  if (state.bold) cls.push('ab');
  if (state.fg) {
    if (state.fg[0] === 'c') cls.push('af' + state.fg.slice(1));
    else style.push('color:' + state.fg);
  }
  if (state.bg) {
    if (state.bg[0] === 'c') cls.push('ag' + state.bg.slice(1));
    else style.push('background:' + state.bg);
  }
  return `<span${cls.length ? ` class="${cls.join(' ')}"` : ''}${style.length ? ` style="${style.join(';')}"` : ''}>`;
}

/** Renders one line with ANSI SGR colours to HTML. */
export function ansiToHtml(line: string): string {
  if (line.indexOf('\x1b') < 0) return escapeHtml(line);
  const state: Sgr = { fg: '', bg: '', bold: false };
  let out = '';
  let last = 0;
  let inSpan = false;
  CSI_RE.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = CSI_RE.exec(line))) {
    if (m.index > last) out += escapeHtml(line.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] === 'm') {
      applyCodes(state, m[1]);
      if (inSpan) out += '</span>';
      const o = open(state);
      out += o;
      inSpan = o !== '';
    }
  }
  if (last < line.length) out += escapeHtml(line.slice(last));
  if (inSpan) out += '</span>';
  return out;
}

/** The line without escape sequences (for copying). */
export function stripAnsi(line: string): string {
  if (line.indexOf('\x1b') < 0) return line;
  CSI_RE.lastIndex = 0;
  return line.replace(CSI_RE, '');
}
