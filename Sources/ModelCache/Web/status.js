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

// A short name for a URL (its file, or "org/repo: file" for a Hugging Face file); the whole URL goes in a tooltip.
function shortName(text) {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text || '')) return text;
  try {
    const u = new URL(text);
    const parts = u.pathname.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
    const at = parts.indexOf('resolve');
    const kind = ['datasets', 'spaces', 'models'].includes(parts[0]) ? 1 : 0;
    if (at === kind + 2 && parts.length > at + 2) return `${parts[kind]}/${parts[kind + 1]}: ${parts.slice(at + 2).join('/')}`;
    return parts.length ? parts[parts.length - 1] : u.host;
  } catch { return text; }
}

// A long value (digest, URL) shown whole on hover and selected whole by a click, for copying.
function value(text, shown, cls = 'mono') {
  return el('span', { class: `${cls} value`, title: text }, shown === undefined ? text : shown);
}

// A peer's state from what the node knows of it: quarantined, unreachable (its last call failed), ok, or unknown.
function peerState(p) {
  if (p.quarantined) return ['quarantined', 'quarantined'];
  if (p.lastError) return ['unreachable', 'state-failure'];
  if (p.catalogueVersion === undefined || p.catalogueVersion === null) return ['not asked yet', 'muted'];
  return ['ok', 'state-success'];
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
  const aborted = job.state === 'failure' && job.failureReason === 'aborted';
  const total = job.downloadTotal || 0;
  const r = rate(job.id);
  const progress = el('progress', { max: String(total || 1), 'data-job': job.id });
  if (total) progress.value = Math.min(job.downloaded, total);
  else if (job.state === 'success') progress.value = 1;
  else if (final) progress.value = 0;         // a failure is never drawn as a full bar
  else progress.removeAttribute('value');     // indeterminate until the size is known
  const numbers = [`${bytes(job.downloaded)} / ${total ? bytes(total) : '?'}`];
  if (total) numbers.push(`${Math.floor((100 * job.downloaded) / total)}%`);
  if (!final && job.state !== 'paused-offline') {
    numbers.push(`${bytes(r)}/s`);
    numbers.push(`ETA ${r > 0 && total ? duration((total - job.downloaded) / r) : '–'}`);
  }
  const sources = Object.entries(job.bySource || {}).sort((a, b) => b[1] - a[1])
    .map(([name, n]) => el('li', {}, `${name}: ${bytes(n)}`));
  const abort = final ? null : el('button', {
    class: 'danger', 'data-abort': job.id,
    onclick: (e) => act(e.target, async () => update(await api('POST', `/v1/web/jobs/${encodeURIComponent(job.id)}/abort`))),
  }, 'Abort');
  const state = aborted ? 'aborted' : job.state === 'failure' && job.failureReason ? `failed: ${job.failureReason}` : job.state;
  const title = job.title || (job.requests[0] && job.requests[0].url) || job.id;
  const full = [job.title, ...job.requests.map((q) => q.url)].filter(Boolean).join('\n');
  return el('li', { class: `card job state-${aborted ? 'aborted' : job.state}`, id: `job-${job.id}`, 'data-state': state },
    el('div', { class: 'row spread' }, el('h3', { title: full }, shortName(title)),
      el('span', { class: `badge state-${aborted ? 'aborted' : job.state}` }, state)),
    el('div', { class: 'muted' }, value(job.id), ` · ${job.requests.length} file${job.requests.length === 1 ? '' : 's'}`),
    progress,
    el('div', { class: 'row spread' }, el('span', { class: 'numbers' }, numbers.join(' · ')), abort),
    job.message ? el('div', { class: `message ${job.state === 'failure' && !aborted ? 'bad' : 'muted'}`, title: job.message }, job.message) : null,
    sources.length ? el('ul', { class: 'sources' }, ...sources) : null);
}

// Running jobs first (newest first), then finished ones (newest first).
function ordered() {
  const all = [...jobs.values()].reverse();
  const running = all.filter((j) => j.state !== 'success' && j.state !== 'failure');
  return running.concat(all.filter((j) => j.state === 'success' || j.state === 'failure'));
}

function renderJobs() {
  const list = document.getElementById('jobs');
  const all = ordered();
  list.replaceChildren(...all.map(jobCard));
  document.getElementById('jobs-empty').hidden = all.length > 0;
}

let renderQueued = false;
function update(job) {
  const before = jobs.get(job.id);
  jobs.set(job.id, job);
  sample(job);
  if (job.state === 'success' && (!before || before.state !== 'success')) { loadBlobs(); loadSummary(); }
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderJobs(); });
  }
}

async function loadBlobs() { renderBlobs(await api('GET', '/v1/web/blobs')); }

function renderBlobs(blobs) {
  blobs.sort((a, b) => b.lastUsedAt.localeCompare(a.lastUsedAt));
  const total = blobs.reduce((n, b) => n + b.size, 0);
  document.getElementById('blobs-total').textContent = blobs.length ? `(${blobs.length}, ${bytes(total)})` : '';
  document.getElementById('blobs-empty').hidden = blobs.length > 0;
  document.getElementById('blobs').replaceChildren(...blobs.map((b) => el('li', { class: 'card blob' },
    el('div', { class: 'row spread' },
      value(b.sha256, b.sha256.slice(0, 16) + '…'),
      el('strong', {}, bytes(b.size))),
    el('ul', { class: 'urls' }, ...b.urls.map((u) => el('li', {}, value(u, shortName(u), 'url')))),
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

async function loadPeers() { renderPeers(await api('GET', '/v1/web/peers')); }

function renderPeers(peers) {
  document.getElementById('peers-empty').hidden = peers.length > 0;
  document.getElementById('peers').replaceChildren(...peers.map((p) => {
    const [state, cls] = peerState(p);
    return el('li', { class: 'card peer', 'data-peer-state': state },
      el('div', { class: 'row spread' }, el('h3', { title: p.name }, p.name), el('span', { class: `badge ${cls}` }, state)),
      el('div', { class: 'row' }, value(p.address), el('span', { class: 'muted' }, `found by ${p.foundBy === 'mdns' ? 'mDNS' : 'static --peer'}`),
        el('span', { class: 'muted' }, `${p.blobs} blob${p.blobs === 1 ? '' : 's'}`)),
      (p.received || p.sent) ? el('div', { class: 'muted', 'data-peer-traffic': '' },
        `taken from it ${bytes(p.received || 0)} · sent to it ${bytes(p.sent || 0)}`) : null,
      p.lastError ? el('div', { class: 'message bad', title: p.lastError }, p.lastError) : null);
  }));
}

async function loadSummary() { renderSummary(await api('GET', '/v1/web/summary')); }

// What this node did for the LAN: bytes it served to peers, where its own bytes came from, hits, cache use.
function renderSummary(s) {
  const t = s.totals;
  const received = t.fromPeers + t.fromOrigin;
  const fetches = t.hits + t.misses;
  const items = [
    ['served to peers', bytes(t.servedToPeers)],
    ['from peers', bytes(t.fromPeers) + (received ? ` (${Math.floor((100 * t.fromPeers) / received)}% of the bytes)` : '')],
    ['from the origin', bytes(t.fromOrigin)],
    ['hit rate', fetches ? `${Math.floor((100 * t.hits) / fetches)}% of ${fetches}` : '–'],
    ['cache', s.cacheLimit ? `${bytes(s.cacheBytes)} of ${bytes(s.cacheLimit)}` : `${bytes(s.cacheBytes)} (no limit)`],
  ];
  document.getElementById('totals').replaceChildren(...items.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-total': k }, v)]));
}

function renderInfo(info) {
  document.getElementById('node').textContent = `node ${info.name} · ${info.id} · port ${info.port} · v${info.version}`;
}

function follow() {
  const live = document.getElementById('live');
  const source = new EventSource('/v1/web/events');
  source.onopen = () => { live.textContent = 'live'; live.className = 'badge live'; };
  source.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'badge state-paused-offline'; };
  for (const name of ['progress', 'success', 'failure']) source.addEventListener(name, (e) => update(JSON.parse(e.data)));
}

// The first paint comes from the snapshot the node put in the page; the event stream and the refreshes follow.
function start() {
  try {
    const snap = JSON.parse(document.getElementById('snapshot').textContent);
    renderInfo(snap.info);
    for (const j of snap.jobs) { jobs.set(j.id, j); sample(j); }
    renderJobs();
    renderBlobs(snap.blobs);
    renderPeers(snap.peers);
    renderSummary(snap.summary);
  } catch (e) { showError(`the page's snapshot is unreadable: ${e.message}`); }
  follow();
  const refresh = () => Promise.all([loadBlobs(), loadPeers(), loadSummary()]).then(() => showError(''), (e) => showError(e.message));
  setInterval(refresh, 5000);
  setInterval(() => { if ([...jobs.values()].some((j) => j.state !== 'success' && j.state !== 'failure')) renderJobs(); }, 1000);
}

start();
