// End-to-end browser test of the web UI against a real `tilt up` (no mocks): headless Chromium through
// playwright-core. TILT_BIN (default <repo>/target/debug/tilt) and CHROMIUM (default /usr/bin/chromium).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const TILT_BIN = process.env.TILT_BIN || path.join(repo, 'target/debug/tilt');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const T = 60_000;

const TILTFILE = `
local_resource('build', cmd='echo building', deps=['src'])
local_resource('server', serve_cmd='python3 -u -c "import time\\nwhile True:\\n print(\\'tick\\', flush=True); time.sleep(0.5)"', resource_deps=['build'], labels=['backend'])
local_resource('noisy', serve_cmd='sh -c "echo needle-one; echo other; echo needle-two; sleep 3600"', labels=['frontend'])
`;
const NAMES = ['(Tiltfile)', 'build', 'server', 'noisy'];

let tmp;
let tilt;
let tiltOut = '';
let baseUrl;
let browser;
let page;

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what, fn, timeout = 30_000, interval = 250) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function startTilt() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tilt-web-test-'));
  fs.mkdirSync(path.join(tmp, 'src'));
  fs.writeFileSync(path.join(tmp, 'Tiltfile'), TILTFILE);
  const env = { ...process.env, HOME: tmp, KUBECONFIG: path.join(tmp, 'kubeconfig') };
  delete env.TILT_CONFIG;
  delete env.TILT_PORT;
  delete env.TILT_HOST;
  tilt = spawn(TILT_BIN, ['up', '-f', path.join(tmp, 'Tiltfile'), '--port', '0', '--api-port', '0'], {
    cwd: tmp,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Should this process die without running after(), take tilt and its Cmds along.
  process.once('exit', () => {
    try {
      process.kill(-tilt.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  const onData = (d) => {
    tiltOut += d.toString();
    if (tiltOut.length > 200_000) tiltOut = tiltOut.slice(-100_000);
  };
  tilt.stdout.on('data', onData);
  tilt.stderr.on('data', onData);
  return waitFor(
    'the "Tilt started on" line',
    () => {
      if (tilt.exitCode !== null) throw new Error(`tilt exited with ${tilt.exitCode}:\n${tiltOut}`);
      const m = /Tilt started on (http:\/\/[^\s/]+)\//.exec(tiltOut);
      return m && m[1].replace('localhost', '127.0.0.1');
    },
    T,
  );
}

async function stopTilt() {
  if (tilt && tilt.exitCode === null) {
    const exited = new Promise((r) => tilt.once('exit', r));
    try {
      process.kill(-tilt.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const t = setTimeout(() => {
      try {
        process.kill(-tilt.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 5000);
    await exited;
    clearTimeout(t);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}

/** GET /api/view through the page (same origin: the Tilt-Token cookie goes along). */
function apiView() {
  return page.evaluate(async () => {
    const r = await fetch('/api/view');
    if (!r.ok) throw new Error(`/api/view: ${r.status}`);
    return r.json();
  });
}

async function resourceStatus(name) {
  const v = await apiView();
  return (v.uiResources || []).find((r) => r.metadata.name === name)?.status || {};
}

function pidAlive(pid) {
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

describe('web UI against a real tilt up', { timeout: 5 * T }, () => {
  before(async () => {
    assert.ok(fs.existsSync(TILT_BIN), `no tilt binary at ${TILT_BIN} (build it or set TILT_BIN)`);
    assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
    baseUrl = await startTilt();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stopTilt();
    }
  });

  it('lists every resource with its status in the table', { timeout: T }, async () => {
    await page.goto(baseUrl + '/');
    for (const name of NAMES) {
      const row = page.locator(`tr.row[data-name="${name}"]`);
      await row.waitFor({ timeout: 30_000 });
      const status = row.locator('td.c-status');
      await waitFor(`a status for ${name}`, async () => (await status.getAttribute('data-status')) !== null);
    }
    assert.equal(await page.locator('tr.row').count(), NAMES.length);
    // Labels become groups.
    assert.equal(await page.locator('tr.row[data-group="backend"][data-name="server"]').count(), 1);
    assert.equal(await page.locator('tr.row[data-group="frontend"][data-name="noisy"]').count(), 1);
    // ?collapsed=true collapses every group (a link for long resource lists); a click opens one.
    await page.goto(baseUrl + '/?collapsed=true');
    await page.locator('tr.group-row[data-group="backend"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('tr.row').count(), 0);
    await page.click('tr.group-row[data-group="backend"] .group-toggle');
    await page.locator('tr.row[data-name="server"]').waitFor({ timeout: 10_000 });
    await page.click('tr.group-row[data-group="backend"] .group-toggle');
    await page.locator('tr.row[data-name="server"]').waitFor({ state: 'detached', timeout: 10_000 });
    await page.evaluate(() => localStorage.clear());
  });

  it('reads ✔︎ n/n ┊ Tilt once every resource is ready', { timeout: T }, async () => {
    await page.goto(baseUrl + '/');
    const title = await waitFor(
      'an all-ready title',
      async () => {
        const t = await page.title();
        return /^✔︎ (\d+)\/\1 ┊ Tilt$/.test(t) && t;
      },
      45_000,
    );
    assert.equal(title, `✔︎ ${NAMES.length}/${NAMES.length} ┊ Tilt`);
    for (const name of NAMES) {
      const s = await page.locator(`tr.row[data-name="${name}"] td.c-status`).getAttribute('data-status');
      assert.ok(['healthy', 'warning', 'none'].includes(s), `${name} is ${s}`);
    }
    assert.match((await page.locator('#favicon').getAttribute('href')) || '', /favicon-green\.svg$/);
  });

  it('filters logs by term and keeps the filter in the URL', { timeout: T }, async () => {
    await page.goto(baseUrl + '/r/noisy/overview');
    const lines = page.locator('[data-testid="log-lines"] .ll');
    await waitFor('the noisy logs', async () => (await lines.allTextContents()).some((t) => t.includes('other')));
    await page.fill('[data-testid="log-term"]', 'needle');
    await page.waitForURL(/[?&]term=needle/, { timeout: 10_000 });
    const texts = await waitFor('only matching lines', async () => {
      const t = await lines.allTextContents();
      return t.length > 0 && t.every((l) => l.toLowerCase().includes('needle')) && t;
    });
    assert.ok(texts.some((t) => t.includes('needle-one')));
    assert.ok(texts.some((t) => t.includes('needle-two')));
    // Reading the URL restores the filter; a /regex/ works too.
    await page.goto(baseUrl + '/r/noisy/overview?term=%2Fneedle-t.o%2F');
    assert.equal(await page.inputValue('[data-testid="log-term"]'), '/needle-t.o/');
    const rx = await waitFor('regex-filtered lines', async () => {
      const t = await lines.allTextContents();
      return t.length > 0 && t;
    });
    assert.deepEqual(rx, ['needle-two']);
  });

  it('restarts the Cmd when trigger is clicked (new PID)', { timeout: T }, async () => {
    await page.goto(baseUrl + '/');
    const before = await waitFor('a pid for server', async () => (await resourceStatus('server')).localResourceInfo?.pid);
    await page.locator('tr.row[data-name="server"] td.c-pod', { hasText: String(before) }).waitFor({ timeout: 20_000 });
    await page.click('[data-testid="trigger-server"]');
    const after = await waitFor('a new pid for server', async () => {
      const pid = (await resourceStatus('server')).localResourceInfo?.pid;
      return pid && String(pid) !== String(before) && pid;
    });
    // The table shows it too.
    await page.locator('tr.row[data-name="server"] td.c-pod', { hasText: String(after) }).waitFor({ timeout: 20_000 });
  });

  it('shows the disconnected bar when the socket dies, then recovers', { timeout: T }, async () => {
    await page.goto(baseUrl + '/r/(all)/overview');
    const count = async () => Number(((await page.textContent('[data-testid="log-count"]')) || '0').split(' ')[0]);
    await waitFor('some logs', async () => (await count()) > 0);
    await page.waitForFunction(() => window.__tiltSocket && window.__tiltSocket.readyState === 1);
    await page.evaluate(() => window.__tiltSocket.close());
    await page.locator('[data-testid="socket-bar"]').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.title(), 'Disconnected ┊ Tilt');
    await page.locator('[data-testid="socket-bar"]').waitFor({ state: 'hidden', timeout: 30_000 });
    // Live again: the server's ticks keep arriving.
    const n = await count();
    await waitFor('new log lines after reconnecting', async () => (await count()) > n, 20_000);
    await waitFor('the title back', async () => (await page.title()) !== 'Disconnected ┊ Tilt');
  });

  it('shows a custom UIButton with inputs and writes its status on click', { timeout: T }, async () => {
    await page.goto(baseUrl + '/r/noisy/overview');
    await page.waitForFunction(() => window.__tiltSocket && window.__tiltSocket.readyState === 1);
    // A UIButton created through the API (as an extension would), then rendered live on the resource.
    const created = await page.evaluate(async () => {
      const body = {
        apiVersion: 'tilt.dev/v1alpha1',
        kind: 'UIButton',
        metadata: { name: 'noisy-hello' },
        spec: {
          location: { componentType: 'Resource', componentID: 'noisy' },
          text: 'Say hello',
          requiresConfirmation: true,
          inputs: [
            { name: 'who', text: { defaultValue: 'world' } },
            { name: 'loud', bool: {} },
            { name: 'lang', choice: { choices: ['en', 'fr'] } },
            { name: 'secret', hidden: { value: 's3' } },
          ],
        },
      };
      const r = await fetch('/proxy/apis/tilt.dev/v1alpha1/uibuttons', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return r.status;
    });
    assert.equal(created, 201);
    const btn = page.locator('[data-testid="button-noisy-hello"]');
    await btn.waitFor({ timeout: 20_000 });
    await btn.locator('button.options').click();
    await page.fill('.popup input[type=text]', 'tilt');
    await page.check('.popup input[type=checkbox]');
    await page.selectOption('.popup select', 'fr');
    await page.click('.popup > button');
    await btn.locator('button.danger').click(); // the confirmation step
    const status = await waitFor('the click in the button status', async () => {
      const s = await page.evaluate(
        async () => (await (await fetch('/proxy/apis/tilt.dev/v1alpha1/uibuttons/noisy-hello')).json()).status,
      );
      return s?.lastClickedAt && s;
    });
    assert.match(status.lastClickedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const byName = Object.fromEntries(status.inputs.map((i) => [i.name, i]));
    assert.deepEqual(byName.who.text, { value: 'tilt' });
    assert.deepEqual(byName.loud.bool, { value: true });
    assert.deepEqual(byName.lang.choice, { value: 'fr' });
    assert.deepEqual(byName.secret.hidden, { value: 's3' });
  });

  it('disables a resource with its toggle and stops its process', { timeout: T }, async () => {
    await page.goto(baseUrl + '/r/server/overview');
    const pid = await waitFor('a pid for server', async () => (await resourceStatus('server')).localResourceInfo?.pid);
    await page.click('[data-testid="disable-toggle-server"]', { timeout: 20_000 });
    const confirm = page.locator('[data-testid="disable-confirm-server"]');
    if (await confirm.count()) await confirm.click();
    await page.locator('[data-testid="resource-status"][data-status="disabled"]').waitFor({ timeout: 30_000 });
    await waitFor(`process ${pid} to exit`, async () => !pidAlive(pid), 15_000);
    await waitFor('the pid gone from the status', async () => {
      const s = await resourceStatus('server');
      return s.disableStatus?.state === 'Disabled' && !s.localResourceInfo?.pid;
    });
    // The page shows no pid either.
    assert.equal(await page.locator('[data-testid="resource-pid"]').count(), 0);
    await page.goto(baseUrl + '/');
    await page.locator('tr.row[data-name="server"] td.c-status[data-status="disabled"]').waitFor({ timeout: 20_000 });
    // The other resources stay up.
    assert.equal(await page.locator('tr.row[data-name="noisy"] td.c-status[data-status="disabled"]').count(), 0);
  });
});
