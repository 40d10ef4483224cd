/*
 * modelcache.js: share model downloads with the LAN from a web page, through the ModelCache node on this machine.
 * Shaped after the web's Background Fetch (https://wicg.github.io/background-fetch/). Served by the node at
 * /modelcache.js; protocol/PROTOCOL.md §12 describes the HTTP API under it.
 *
 *   <script src="http://127.0.0.1:7070/modelcache.js"></script>
 *   modelcache.configure({ token });              // the node's token (`modelcache token`), needed to start and abort
 *   const reg = await modelcache.fetch('gpt2', ['https://…/config.json', 'https://…/model.safetensors'],
 *                                      { title: 'GPT-2', downloadTotal: 548_000_000 });
 *   reg.addEventListener('progress', () => console.log(reg.downloaded, reg.downloadTotal, reg.result));
 *   const response = await reg.match('https://…/model.safetensors');   // streams the cached bytes from the node
 *
 * The page's origin must be allowed by the node (`modelcache serve --allow-origin ORIGIN`).
 */
(function (global) {
  'use strict';

  const script = typeof document !== 'undefined' ? document.currentScript : null;
  const config = {
    // The node that served this script, else the default one on this machine.
    node: script && script.src ? new URL(script.src).origin : 'http://127.0.0.1:7070',
    token: (script && script.dataset && script.dataset.token) || '',
  };

  /** An error the node answered (`code` is one of protocol §5 and §12's codes), or a network failure. */
  class ModelCacheError extends Error {
    constructor(code, message, status) {
      super(message);
      this.name = 'ModelCacheError';
      this.code = code;
      this.status = status || 0;
    }
  }

  async function request(method, path, body) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD' && config.token) headers['X-ModelCache-Token'] = config.token;
    let response;
    try {
      response = await fetch(config.node + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), mode: 'cors', cache: 'no-store',
      });
    } catch (e) {
      // A browser hides why a cross-origin request failed: the node refused this origin, or is not running.
      throw new ModelCacheError('unreachable', `cannot reach the ModelCache node at ${config.node} ` +
        `(is it running, and started with --allow-origin ${location.origin}?): ${e.message}`);
    }
    if (!response.ok) {
      const e = await response.json().catch(() => null);
      const err = (e && e.error) || { code: 'http-' + response.status, message: response.statusText };
      throw new ModelCacheError(err.code, err.message, response.status);
    }
    return response.json();
  }

  function absolute(input) {
    if (typeof input === 'string') return new URL(input, location.href).href;
    if (input instanceof URL) return input.href;
    if (input && typeof input.url === 'string') return new URL(input.url, location.href).href;
    throw new TypeError('a request is a URL string, a URL, a Request or {url, sha256}');
  }

  const FINAL = new Set(['success', 'failure']);
  const registrations = new Map();

  /** One background fetch on the node, like a BackgroundFetchRegistration. */
  class ModelCacheRegistration extends EventTarget {
    constructor(job) {
      super();
      this._job = job;
      this._source = null;
      this._waiters = [];
      this.onprogress = null;
      this._watch();
    }

    get id() { return this._job.id; }
    get title() { return this._job.title; }
    get uploadTotal() { return 0; }
    get uploaded() { return 0; }
    get downloadTotal() { return this._job.downloadTotal; }
    get downloaded() { return this._job.downloaded; }
    /** "" while running, then "success" or "failure". */
    get result() { return this._job.result; }
    /** "" or one of "aborted", "bad-status", "fetch-error", "quota-exceeded", "download-total-exceeded". */
    get failureReason() { return this._job.failureReason || ''; }
    get recordsAvailable() { return true; }
    /** Beyond Background Fetch: "pending", "downloading", "paused-offline", "success" or "failure". */
    get state() { return this._job.state; }
    /** Why the job failed, or why it is paused. */
    get message() { return this._job.message || ''; }
    /** Bytes from each source ("origin", "peer NAME"). */
    get bySource() { return Object.assign({}, this._job.bySource); }
    get requests() { return this._job.requests.map((r) => Object.assign({}, r)); }

    /** Aborts the job; resolves to true if this call aborted it. */
    async abort() {
      if (FINAL.has(this.state)) return false;
      const job = await request('POST', `/v1/web/jobs/${encodeURIComponent(this.id)}/abort`, undefined);
      this._apply(job);
      return job.failureReason === 'aborted';
    }

    /**
     * The cached file for one request of the job, as a Response whose body streams from the node; undefined if the
     * job has no such request. Waits until that file is in the cache (rejects if the job fails without it).
     * `options.range` (or a Request's Range header) asks for part of it: "bytes=0-1023".
     */
    async match(input, options = {}) {
      const url = absolute(input);
      const index = this._job.requests.findIndex((r) => r.url === url);
      if (index < 0) return undefined;
      const range = options.range || (input && input.headers && input.headers.get && input.headers.get('Range'));
      const digest = await this._ready(index);
      const headers = range ? { Range: range } : {};
      return fetch(`${config.node}/v1/web/blobs/${digest}/bytes`, { headers, mode: 'cors', cache: 'no-store' });
    }

    /** Every cached file of the job (or those matching `input`), in request order. */
    async matchAll(input, options = {}) {
      const urls = input === undefined ? this._job.requests.map((r) => r.url) : [absolute(input)];
      const out = [];
      for (const url of urls) {
        const r = await this.match(url, options);
        if (r) out.push(r);
      }
      return out;
    }

    /** Stops following the job's events (the job goes on at the node). */
    close() {
      if (this._source) this._source.close();
      this._source = null;
      registrations.delete(this.id);
    }

    _ready(index) {
      const r = this._job.requests[index];
      if (r.result) return Promise.resolve(r.result);
      if (this.state === 'failure') {
        return Promise.reject(new ModelCacheError(this.failureReason || 'failure', this.message || 'the job failed'));
      }
      return new Promise((resolve, reject) => this._waiters.push({ index, resolve, reject }));
    }

    _apply(job) {
      const before = this._job;
      this._job = job;
      const changed = before.downloaded !== job.downloaded || before.downloadTotal !== job.downloadTotal ||
        before.state !== job.state || before.result !== job.result || before.failureReason !== job.failureReason ||
        JSON.stringify(before.bySource) !== JSON.stringify(job.bySource);
      this._waiters = this._waiters.filter((w) => {
        const r = job.requests[w.index];
        if (r && r.result) { w.resolve(r.result); return false; }
        if (job.state === 'failure') {
          w.reject(new ModelCacheError(job.failureReason || 'failure', job.message || 'the job failed'));
          return false;
        }
        return true;
      });
      if (FINAL.has(job.state) && this._source) { this._source.close(); this._source = null; }
      if (changed) {
        const event = new Event('progress');
        if (typeof this.onprogress === 'function') this.onprogress(event);
        this.dispatchEvent(event);
      }
    }

    // Follows the job's server-sent events. EventSource reconnects by itself (say, after the node restarted) and
    // the node starts each stream with the job's current state, so a paused job that resumes is seen.
    _watch() {
      if (FINAL.has(this.state) || this._source) return;
      const source = new EventSource(`${config.node}/v1/web/jobs/${encodeURIComponent(this.id)}/events`);
      const onEvent = (e) => this._apply(JSON.parse(e.data));
      for (const name of ['progress', 'success', 'failure']) source.addEventListener(name, onEvent);
      this._source = source;
    }
  }

  function registration(job) {
    const known = registrations.get(job.id);
    if (known) { known._apply(job); return known; }
    const reg = new ModelCacheRegistration(job);
    registrations.set(job.id, reg);
    return reg;
  }

  const modelcache = {
    ModelCacheError,
    ModelCacheRegistration,

    /** `node`: the node's base URL (default: where this script came from); `token`: the node's token. */
    configure(options = {}) {
      if (options.node !== undefined) config.node = String(options.node).replace(/\/+$/, '');
      if (options.token !== undefined) config.token = String(options.token);
      return { node: config.node, token: config.token ? '(set)' : '' };
    },

    /**
     * Starts a background fetch on the node, like BackgroundFetchManager.fetch(). `requests`: one or an array of
     * URL strings, URLs, Requests, or {url, sha256} (a known sha256 lets the file join LAN swarms); options:
     * `title`, `downloadTotal` (bytes; more fails the job with "download-total-exceeded"). Rejects with a
     * TypeError if a job with this id exists (use `get(id)` to find it).
     */
    async fetch(id, requests, options = {}) {
      const list = (Array.isArray(requests) ? requests : [requests]).map((r) => {
        const item = { url: absolute(r) };
        if (r && typeof r === 'object' && typeof r.sha256 === 'string') item.sha256 = r.sha256;
        return item;
      });
      if (list.length === 0) throw new TypeError('modelcache.fetch needs at least one request');
      const body = { id: String(id), title: options.title || '', requests: list };
      if (options.downloadTotal) body.downloadTotal = options.downloadTotal;
      try {
        return registration(await request('POST', '/v1/web/jobs', body));
      } catch (e) {
        if (e.code === 'conflict') throw new TypeError(`a job with id '${id}' exists: use modelcache.get('${id}')`);
        throw e;
      }
    },

    /** The job with this id (running or finished), or undefined. */
    async get(id) {
      try {
        return registration(await request('GET', `/v1/web/jobs/${encodeURIComponent(id)}`));
      } catch (e) {
        if (e.code === 'not-found') return undefined;
        throw e;
      }
    },

    /** The ids of the node's jobs, oldest first (finished ones too: their files stay readable with match()). */
    async getIds() {
      return (await request('GET', '/v1/web/jobs')).map((j) => j.id);
    },
  };

  global.modelcache = modelcache;
})(typeof window !== 'undefined' ? window : globalThis);
