// Unit tests of the page's pure modules (log store, filters, ANSI, status rule), compiled from the
// TypeScript sources with Vite into a temporary folder.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.resolve(here, '../src');
let tmp;
let m;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tilt-web-unit-'));
  const entry = path.join(tmp, 'entry.ts');
  fs.writeFileSync(
    entry,
    ['logstore', 'ansi', 'status'].map((f) => `export * from ${JSON.stringify(path.join(src, f + '.ts'))};`).join('\n'),
  );
  await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      lib: { entry, formats: ['es'], fileName: 'mod' },
      outDir: path.join(tmp, 'out'),
      minify: false,
      emptyOutDir: true,
    },
  });
  const file = fs.readdirSync(path.join(tmp, 'out')).find((f) => f.startsWith('mod'));
  m = await import(pathToFileURL(path.join(tmp, 'out', file)).href);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const seg = (spanId, text, level = 'INFO') => ({ spanId, text, level, time: '2024-01-01T00:00:00Z' });

describe('LogStore', () => {
  it('splits segments into lines and joins a line continued by the next segment of its span', () => {
    const s = new m.LogStore();
    s.append({
      spans: { 'build:a': { manifestName: 'a' }, b: { manifestName: 'b' } },
      segments: [seg('build:a', 'one\ntwo\n'), seg('build:a', 'thr'), seg('b', 'other\n'), seg('build:a', 'ee\nfour\n')],
      fromCheckpoint: 0,
      toCheckpoint: 4,
    });
    assert.deepEqual(s.texts, ['one', 'two', 'three', 'other', 'four']);
    assert.deepEqual(s.manifests, ['a', 'a', 'a', 'b', 'a']);
    assert.deepEqual(s.builds, [true, true, true, false, true]);
    assert.equal(s.checkpoint, 4);
  });

  it('drops segments it already has when fromCheckpoint is behind', () => {
    const s = new m.LogStore();
    s.append({ spans: { x: { manifestName: 'x' } }, segments: [seg('x', 'a\n'), seg('x', 'b\n')], fromCheckpoint: 0, toCheckpoint: 2 });
    s.append({ segments: [seg('x', 'b\n'), seg('x', 'c\n')], fromCheckpoint: 1, toCheckpoint: 3 });
    assert.deepEqual(s.texts, ['a', 'b', 'c']);
    assert.equal(s.checkpoint, 3);
  });

  it('counts WARN segments per resource and truncates to half its cap', () => {
    const s = new m.LogStore(1000);
    s.append({ spans: { x: { manifestName: 'x' } }, segments: [seg('x', 'careful\n', 'WARN')], fromCheckpoint: 0, toCheckpoint: 1 });
    assert.equal(s.warnCounts.get('x'), 1);
    const segments = [];
    for (let i = 0; i < 200; i++) segments.push(seg('x', `line ${String(i).padStart(3, '0')}\n`));
    s.append({ segments, fromCheckpoint: 1, toCheckpoint: 201 });
    assert.ok(s.bytes <= 500, `bytes ${s.bytes}`);
    assert.equal(s.texts[s.texts.length - 1], 'line 199');
    assert.equal(s.firstId + s.texts.length, s.endId);
    assert.ok(s.firstId > 0);
  });

  it('clears one resource or everything', () => {
    const s = new m.LogStore();
    s.append({
      spans: { x: { manifestName: 'x' }, y: { manifestName: 'y' } },
      segments: [seg('x', 'x1\n', 'WARN'), seg('y', 'y1\n'), seg('x', 'x2\n')],
      fromCheckpoint: 0,
      toCheckpoint: 3,
    });
    s.clear('x');
    assert.deepEqual(s.texts, ['y1']);
    assert.equal(s.warnCounts.get('x'), undefined);
    s.clear();
    assert.deepEqual(s.texts, []);
  });

  it('takes a large message in slices, in order', async () => {
    const s = new m.LogStore();
    const segments = [];
    for (let i = 0; i < 10000; i++) segments.push(seg('x', `l${i}\n`));
    s.append({ spans: { x: { manifestName: 'x' } }, segments, fromCheckpoint: 0, toCheckpoint: 10000 });
    s.append({ segments: [seg('x', 'last\n')], fromCheckpoint: 10000, toCheckpoint: 10001 });
    assert.ok(s.texts.length < 10001);
    for (let i = 0; i < 100 && s.texts.length < 10001; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(s.texts.length, 10001);
    assert.equal(s.texts[9999], 'l9999');
    assert.equal(s.texts[10000], 'last');
  });
});

describe('log filters', () => {
  const store = () => {
    const s = new m.LogStore();
    s.append({
      spans: { 'build:a': { manifestName: 'a' }, 'a:serve': { manifestName: 'a' }, tf: { manifestName: '' } },
      segments: [
        seg('build:a', 'Building Needle\n'),
        seg('a:serve', 'serving needle\n'),
        seg('a:serve', 'oops\n', 'ERROR'),
        seg('a:serve', 'hmm\n', 'WARN'),
        seg('tf', 'loaded Tiltfile\n'),
      ],
      fromCheckpoint: 0,
      toCheckpoint: 5,
    });
    return s;
  };
  const pick = (s, f) => s.texts.filter((_, i) => m.compileFilter(s, f)(i));

  it('filters by resource, level, source and term (text or /regex/, case-insensitive)', () => {
    const s = store();
    assert.deepEqual(pick(s, { manifest: 'a', term: 'needle' }), ['Building Needle', 'serving needle']);
    assert.deepEqual(pick(s, { source: 'build' }), ['Building Needle']);
    assert.deepEqual(pick(s, { source: 'runtime', manifest: 'a' }), ['serving needle', 'oops', 'hmm']);
    assert.deepEqual(pick(s, { level: 'error' }), ['oops']);
    assert.deepEqual(pick(s, { level: 'warn' }), ['hmm']);
    assert.deepEqual(pick(s, { term: '/^serv.*NEEDLE$/' }), ['serving needle']);
    assert.deepEqual(pick(s, { term: 'a.b' }), []); // text terms are not regexes
    assert.deepEqual(pick(s, { manifest: '(Tiltfile)' }), ['loaded Tiltfile']);
  });
});

describe('ANSI', () => {
  it('renders colours and bold, escapes HTML and drops other sequences', () => {
    assert.equal(m.ansiToHtml('a<b>&'), 'a&lt;b&gt;&amp;');
    assert.equal(m.ansiToHtml('\x1b[31mred\x1b[0m plain'), '<span class="af1">red</span> plain');
    assert.equal(m.ansiToHtml('\x1b[1;92mok\x1b[39m!'), '<span class="ab af10">ok</span><span class="ab">!</span>');
    assert.equal(m.ansiToHtml('\x1b[38;5;196mx'), '<span style="color:rgb(255,0,0)">x</span>');
    assert.equal(m.ansiToHtml('\x1b[2Kclear\x1b[1A'), 'clear');
    assert.equal(m.stripAnsi('\x1b[32mgreen\x1b[0m'), 'green');
  });
});

describe('status', () => {
  const r = (status, name = 'x') => ({ metadata: { name }, status });
  it('applies the combined rule: disabled, then build, then runtime', () => {
    assert.equal(m.combinedStatus(r({ disableStatus: { state: 'Disabled' }, updateStatus: 'error' }), 0), 'disabled');
    assert.equal(m.combinedStatus(r({ updateStatus: 'error', runtimeStatus: 'ok' }), 0), 'error');
    assert.equal(m.combinedStatus(r({ updateStatus: 'in_progress', runtimeStatus: 'error' }), 0), 'building');
    assert.equal(m.combinedStatus(r({ updateStatus: 'pending', runtimeStatus: 'ok' }), 0), 'pending');
    assert.equal(m.combinedStatus(r({ updateStatus: 'ok', runtimeStatus: 'error' }), 0), 'unhealthy');
    assert.equal(m.combinedStatus(r({ updateStatus: 'ok', runtimeStatus: 'pending' }), 0), 'pending');
    assert.equal(m.combinedStatus(r({ updateStatus: 'ok', runtimeStatus: 'not_applicable' }), 0), 'healthy');
    assert.equal(m.combinedStatus(r({ updateStatus: 'not_applicable', runtimeStatus: 'ok' }), 2), 'warning');
  });

  it('titles the page as Go Tilt does', () => {
    const ok = r({ updateStatus: 'ok', runtimeStatus: 'ok' });
    const bad = r({ updateStatus: 'error' });
    const pend = r({ updateStatus: 'pending' });
    const off = r({ disableStatus: { state: 'Disabled' } });
    const w = new Map();
    assert.equal(m.documentTitle(m.countStatuses([ok, ok, off], w), true, false), '✔︎ 2/2 ┊ Tilt');
    assert.equal(m.documentTitle(m.countStatuses([ok, bad], w), true, false), '✖︎ 1 ┊ Tilt');
    assert.equal(m.documentTitle(m.countStatuses([ok, pend], w), true, false), '… 1/2 ┊ Tilt');
    assert.equal(m.documentTitle(m.countStatuses([ok], w), false, false), 'Disconnected ┊ Tilt');
    assert.equal(m.documentTitle(m.countStatuses([ok], w), false, true), 'Snapshot: ✔︎ 1/1 ┊ Tilt');
    assert.equal(m.faviconColor(m.countStatuses([ok, bad], w), true), 'red');
  });

  it('toggles auto/manual keeping the initial-build half', () => {
    assert.deepEqual([0, 1, 2, 3].map(m.toggledMode), [1, 0, 3, 2]);
  });
});
