// The status page: this node's jobs (live, from the job event stream), the blobs in its cache, and its peers.
// Everything on the page is built with textContent: titles and URLs come from web apps and are never parsed as HTML.
'use strict';

const token = document.querySelector('meta[name="modelcache-token"]').content;
const jobs = new Map();      // id -> job
const samples = new Map();   // id -> [{t, downloaded}] over the last seconds, for the rate and ETA

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function bytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (!isFinite(s) || s < 0) return '–';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

function ago(iso) {
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

async function api(method, path, body) {
  const headers = { 'X-ModelCache-Token': token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error && data.error.message) || `${method} ${path}: HTTP ${r.status}`);
  return data;
}

function showError(message) {
  const e = document.getElementById('error');
  e.textContent = message;
  e.hidden = !message;
}

async function act(button, work) {
  button.disabled = true;
  try { await work(); showError(''); } catch (e) { showError(e.message); } finally { button.disabled = false; }
}

// Rate over the last 5 s of samples; ETA from it.
function rate(id) {
  const s = samples.get(id) || [];
  if (s.length < 2) return 0;
  const a = s[0], b = s[s.length - 1];
  return b.t > a.t ? Math.max(0, (b.downloaded - a.downloaded) / ((b.t - a.t) / 1000)) : 0;
}

function sample(job) {
  const now = Date.now();
  const s = (samples.get(job.id) || []).filter((x) => now - x.t < 5000);
  s.push({ t: now, downloaded: job.downloaded });
  samples.set(job.id, s);
}

function jobCard(job) {
  const final = job.state === 'success' || job.state === 'failure';
  const total = job.downloadTotal || 0;
  const r = rate(job.id);
  const progress = el('progress', { max: String(total || 1), 'data-job': job.id });
  if (total) progress.value = Math.min(job.downloaded, total);
  else if (final) progress.value = 1;
  else progress.removeAttribute('value');  // indeterminate until the size is known
  const numbers = [`${bytes(job.downloaded)} / ${total ? bytes(total) : '?'}`];
  if (total) numbers.push(`${Math.floor((100 * job.downloaded) / total)}%`);
  if (!final) {
    numbers.push(`${bytes(r)}/s`);
    numbers.push(`ETA ${r > 0 && total ? duration((total - job.downloaded) / r) : '–'}`);
  }
  const sources = Object.entries(job.bySource || {}).sort((a, b) => b[1] - a[1])
    .map(([name, n]) => el('li', {}, `${name}: ${bytes(n)}`));
  const abort = final ? null : el('button', {
    class: 'danger', 'data-abort': job.id,
    onclick: (e) => act(e.target, async () => update(await api('POST', `/v1/web/jobs/${encodeURIComponent(job.id)}/abort`))),
  }, 'Abort');
  const state = job.state === 'failure' && job.failureReason ? `failure: ${job.failureReason}` : job.state;
  return el('li', { class: 'card job', id: `job-${job.id}` },
    el('div', { class: 'row spread' }, el('h3', {}, job.title || job.id), el('span', { class: `badge state-${job.state}` }, state)),
    el('div', { class: 'muted mono' }, `${job.id} · ${job.requests.length} file${job.requests.length === 1 ? '' : 's'}`),
    progress,
    el('div', { class: 'row spread' }, el('span', { class: 'numbers' }, numbers.join(' · ')), abort),
    job.message ? el('div', { class: 'muted' }, job.message) : null,
    sources.length ? el('ul', { class: 'sources' }, ...sources) : null);
}

function renderJobs() {
  const list = document.getElementById('jobs');
  const all = [...jobs.values()].reverse();  // newest first
  list.replaceChildren(...all.map(jobCard));
  document.getElementById('jobs-empty').hidden = all.length > 0;
}

let renderQueued = false;
function update(job) {
  const before = jobs.get(job.id);
  jobs.set(job.id, job);
  sample(job);
  if (job.state === 'success' && (!before || before.state !== 'success')) loadBlobs();
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderJobs(); });
  }
}

async function loadBlobs() {
  const blobs = await api('GET', '/v1/web/blobs');
  blobs.sort((a, b) => b.lastUsedAt.localeCompare(a.lastUsedAt));
  const total = blobs.reduce((n, b) => n + b.size, 0);
  document.getElementById('blobs-total').textContent = blobs.length ? `(${blobs.length}, ${bytes(total)})` : '';
  document.getElementById('blobs-empty').hidden = blobs.length > 0;
  document.getElementById('blobs').replaceChildren(...blobs.map((b) => el('li', { class: 'card blob' },
    el('div', { class: 'row spread' },
      el('span', { class: 'mono', title: b.sha256 }, b.sha256.slice(0, 16) + '…'),
      el('strong', {}, bytes(b.size))),
    el('ul', { class: 'urls' }, ...b.urls.map((u) => el('li', {}, u))),
    el('div', { class: 'row spread' },
      el('span', { class: 'muted' }, `used ${ago(b.lastUsedAt)}${b.pinned ? ' · pinned' : ''}`),
      el('span', { class: 'row' },
        el('button', { onclick: (e) => act(e.target, async () => { await api('POST', '/v1/web/pin', { what: b.sha256, pinned: !b.pinned }); await loadBlobs(); }) },
          b.pinned ? 'Unpin' : 'Pin'),
        el('button', { class: 'danger', onclick: (e) => act(e.target, async () => {
          if (!confirm(`Remove ${b.urls[0] || b.sha256} from the cache?`)) return;
          await api('DELETE', `/v1/web/blobs/${b.sha256}`);
          await loadBlobs();
        }) }, 'Delete'))))));
}

async function loadPeers() {
  const peers = await api('GET', '/v1/web/peers');
  document.getElementById('peers-empty').hidden = peers.length > 0;
  document.getElementById('peers').replaceChildren(...peers.map((p) => el('li', { class: 'card peer' },
    el('div', { class: 'row spread' }, el('h3', {}, p.name),
      el('span', { class: `badge ${p.quarantined ? 'quarantined' : 'state-success'}` }, p.quarantined ? 'quarantined' : 'ok')),
    el('div', { class: 'row' }, el('span', { class: 'mono' }, p.address), el('span', { class: 'muted' }, `found by ${p.foundBy === 'mdns' ? 'mDNS' : 'static --peer'}`),
      el('span', { class: 'muted' }, `${p.blobs} blob${p.blobs === 1 ? '' : 's'}`)),
    p.lastError ? el('div', { class: 'muted' }, p.lastError) : null)));
}

function follow() {
  const live = document.getElementById('live');
  const source = new EventSource('/v1/web/events');
  source.onopen = () => { live.textContent = 'live'; live.className = 'badge live'; };
  source.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'badge state-paused-offline'; };
  for (const name of ['progress', 'success', 'failure']) source.addEventListener(name, (e) => update(JSON.parse(e.data)));
}

async function start() {
  try {
    const info = await api('GET', '/v1/web/info');
    document.getElementById('node').textContent = `node ${info.name} · ${info.id} · port ${info.port} · v${info.version}`;
  } catch (e) { showError(e.message); }
  follow();
  const refresh = () => Promise.all([loadBlobs(), loadPeers()]).then(() => showError(''), (e) => showError(e.message));
  refresh();
  setInterval(refresh, 5000);
  setInterval(() => { if ([...jobs.values()].some((j) => j.state !== 'success' && j.state !== 'failure')) renderJobs(); }, 1000);
}

start();
