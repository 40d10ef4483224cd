"""The browser API and the status page in a real browser (headless Chromium driven by Selenium), all on loopback:
a slow origin, a node (`serve --no-mdns --allow-origin <page origin>`), the example page (examples/web/) on an
allowed origin and on a disallowed one. Prints PASS/FAIL lines and a summary; exits non-zero on any failure.

Run by Tests/web/browser-test.sh (which makes the virtualenv); needs MODELCACHE_BIN, chromium and chromedriver."""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.abspath(os.environ.get("MODELCACHE_BIN", os.path.join(ROOT, ".build/debug/modelcache")))
PASSED, FAILED = 0, 0
PROCS = []


def check(desc, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS: {desc}", flush=True)
    else:
        FAILED += 1
        print(f"FAIL: {desc}" + (f" ({detail})" if detail else ""), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log):
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    PROCS.append(p)
    return p


def stop_all():
    for p in reversed(PROCS):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.time() + 10
    for p in reversed(PROCS):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def wait_for(url, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.1)
    return False


def node_api(node, method, path, token=None, body=None):
    req = urllib.request.Request(node + path, method=method, data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("X-ModelCache-Token", token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_job(node, job_id, pred, seconds=60):
    deadline = time.time() + seconds
    job = None
    while time.time() < deadline:
        status, job = node_api(node, "GET", f"/v1/web/jobs/{job_id}")
        if status == 200 and pred(job):
            return job
        time.sleep(0.1)
    return job


def browser(tmp):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                f"--user-data-dir={tmp}/chromium-profile", "--window-size=1280,900"]:
        options.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver"), log_output=os.path.join(tmp, "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(90)
    return driver


def run_js(driver, body, *args):
    """Runs an async function body in the page; returns its value, or {"error": message} if it threw."""
    script = ("const done = arguments[arguments.length - 1];"
              "(async (...args) => {" + body + "})(...Array.from(arguments).slice(0, -1))"
              ".then(done, (e) => done({error: String(e && e.message || e), name: e && e.name, code: e && e.code}));")
    return driver.execute_async_script(script, *args)


def main():
    # On SIGTERM (the wrapper's time limit), still stop everything in the `finally` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="modelcache-web-test.")
    keep = bool(os.environ.get("KEEP_OUTPUT"))
    shots = os.environ.get("SCREENSHOT_DIR", os.path.join(ROOT, ".build", "browser-test"))
    os.makedirs(shots, exist_ok=True)
    driver = None
    try:
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        files = {"config.json": os.urandom(3000), "model.bin": os.urandom(3 << 20),
                 "big.bin": os.urandom(8 << 20), "big2.bin": os.urandom(8 << 20)}
        for name, data in files.items():
            with open(os.path.join(www, name), "wb") as f:
                f.write(data)
        digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}

        origin_port, node_port, page_port, evil_port = free_port(), free_port(), free_port(), free_port()
        dead_peer = f"127.0.0.1:{free_port()}"  # a static peer nothing listens on: its badge must not say "ok"
        origin = f"http://127.0.0.1:{origin_port}"
        node = f"http://127.0.0.1:{node_port}"
        page_origin = f"http://127.0.0.1:{page_port}"
        log = open(os.path.join(tmp, "processes.log"), "ab")
        start([sys.executable, os.path.join(ROOT, "Tests/web/trickle_origin.py"), str(origin_port), www,
               str(1 << 20)], log)
        cache = os.path.join(tmp, "cache")
        start([BIN, "serve", "--cache-dir", cache, "--listen", f"127.0.0.1:{node_port}", "--no-mdns",
               "--allow-origin", page_origin, "--peer", dead_peer, "-v"], open(os.path.join(tmp, "node.log"), "ab"))
        examples = os.path.join(ROOT, "examples/web")
        for port in (page_port, evil_port):
            start([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", examples], log)
        ready = all(wait_for(u) for u in [origin + "/config.json", node + "/v1/web/info",
                                           f"{page_origin}/index.html", f"http://127.0.0.1:{evil_port}/index.html"])
        check("origin, node and page servers are up", ready)
        if not ready:
            return
        token = subprocess.run([BIN, "token", "--cache-dir", cache], capture_output=True, text=True).stdout.strip()
        check("modelcache token prints the node's token", len(token) == 64)
        driver = browser(tmp)
        page = f"{page_origin}/index.html?node={node}#token={token}"

        # 1. A two-file model: progress events, result "success", bytes read back through match() and hashed.
        driver.get(page)
        urls = [f"{origin}/config.json", f"{origin}/model.bin"]
        total = len(files["config.json"]) + len(files["model.bin"])
        r = run_js(driver, """
            const [urls, total] = args;
            await example.ready;
            const reg = await example.start('two-files', urls, {title: 'Two files', downloadTotal: total});
            const events = [];
            reg.addEventListener('progress', () => events.push([reg.downloaded, reg.downloadTotal, reg.result]));
            await example.finished(reg);
            const files = await example.verify(reg);
            const part = await reg.match(urls[1], {range: 'bytes=1000-1999'});
            const partBytes = new Uint8Array(await part.arrayBuffer());
            const ids = await modelcache.getIds();
            return {result: reg.result, failureReason: reg.failureReason, downloaded: reg.downloaded,
                    downloadTotal: reg.downloadTotal, events, files, ids, partStatus: part.status,
                    partRange: part.headers.get('Content-Range'), partSha: await example.sha256(new Response(partBytes)),
                    status: document.getElementById('status').textContent};
        """, urls, total)
        if "error" in r:
            check("the example page fetches a two-file model", False, r["error"])
        else:
            check("the two-file fetch ends with result == 'success'", r["result"] == "success" and r["failureReason"] == "", r)
            check("progress events arrive while it downloads",
                  len(r["events"]) >= 3 and any(0 < e[0] < total for e in r["events"]), r["events"][:10])
            check("downloaded == downloadTotal at the end", r["downloaded"] == total == r["downloadTotal"])
            shas = {f["url"].rsplit("/", 1)[1]: f["sha256"] for f in r["files"]}
            check("match() streams both files; their sha256 (WebCrypto) is right",
                  shas == {"config.json": digest["config.json"], "model.bin": digest["model.bin"]}, shas)
            check("match() with a Range gives 206 and those bytes",
                  r["partStatus"] == 206 and r["partRange"] == f"bytes 1000-1999/{len(files['model.bin'])}"
                  and r["partSha"] == hashlib.sha256(files["model.bin"][1000:2000]).hexdigest(), r["partRange"])
            check("getIds() lists the job", "two-files" in r["ids"], r["ids"])

        # A page opened again finds its job by id.
        driver.get(page)
        r = run_js(driver, """
            await example.ready;
            const reg = await modelcache.get('two-files');
            return reg ? {result: reg.result, downloaded: reg.downloaded, missing: await modelcache.get('nope')} : {error: 'none'};
        """)
        check("a page opened again finds its job with get(id)", r.get("result") == "success" and r.get("downloaded") == total
              and r.get("missing") is None, r)

        # 2. abort() gives failureReason "aborted".
        r = run_js(driver, """
            const [url] = args;
            const reg = await example.start('to-abort', [url], {title: 'Aborted'});
            await new Promise((resolve) => reg.addEventListener('progress', function on() {
              if (reg.downloaded > 0) { reg.removeEventListener('progress', on); resolve(); }
            }));
            const aborted = await reg.abort();
            await example.finished(reg);
            return {aborted, result: reg.result, failureReason: reg.failureReason, downloaded: reg.downloaded,
                    again: await reg.abort()};
        """, f"{origin}/big2.bin")
        check("abort() gives result 'failure', failureReason 'aborted'",
              r.get("result") == "failure" and r.get("failureReason") == "aborted" and r.get("aborted") is True, r)
        check("abort() of a finished job is false", r.get("again") is False, r)
        _, job = node_api(node, "GET", "/v1/web/jobs/to-abort")
        check("the node agrees the job was aborted", job and job["state"] == "failure" and job["failureReason"] == "aborted", job)

        # 3. A page from an origin the node does not allow is refused.
        driver.get(f"http://127.0.0.1:{evil_port}/index.html?node={node}#token={token}")
        r = run_js(driver, """
            const [url, node] = args;
            await example.ready;  // modelcache.js itself loads (a plain <script>), the API does not answer
            let started = null, listed = null, read = null;
            try { await modelcache.fetch('evil', [url]); started = 'started'; } catch (e) { started = e.code || e.name; }
            try { await modelcache.getIds(); listed = 'listed'; } catch (e) { listed = e.code || e.name; }
            try { await fetch(node + '/v1/web/jobs'); read = 'read'; } catch (e) { read = e.name; }
            return {started, listed, read};
        """, f"{origin}/config.json", node)
        check("a disallowed origin cannot start a job", r.get("started") == "unreachable", r)
        check("a disallowed origin cannot list jobs or read the API", r.get("listed") == "unreachable" and r.get("read") == "TypeError", r)
        status, _ = node_api(node, "GET", "/v1/web/jobs/evil")
        check("the node has no job from the disallowed origin", status == 404, status)

        # A job paused offline resumes, and the page sees both (its origin goes away mid-download, then comes back).
        flaky_port = free_port()
        flaky_args = [sys.executable, os.path.join(ROOT, "Tests/web/trickle_origin.py"), str(flaky_port), www, str(1 << 20)]
        flaky = start(flaky_args, log)
        wait_for(f"http://127.0.0.1:{flaky_port}/config.json")
        driver.get(page)
        driver.execute_script("window.seen = []; window.pausedJob = null;")
        r = run_js(driver, """
            const [url] = args;
            const reg = await example.start('offline', [url], {title: 'Offline and back'});
            window.pausedJob = reg;
            reg.addEventListener('progress', () => { if (seen[seen.length - 1] !== reg.state) seen.push(reg.state); });
            await new Promise((resolve) => reg.addEventListener('progress', function on() {
              if (reg.downloaded > 0) { reg.removeEventListener('progress', on); resolve(); }
            }));
            return {state: reg.state};
        """, f"http://127.0.0.1:{flaky_port}/big.bin")
        check("a job from a second origin downloads", r.get("state") == "downloading", r)
        os.kill(flaky.pid, signal.SIGKILL)
        flaky.wait()
        r = run_js(driver, """
            const deadline = Date.now() + 40000;
            while (Date.now() < deadline && pausedJob.state !== 'paused-offline') await new Promise((r) => setTimeout(r, 100));
            return {state: pausedJob.state, message: pausedJob.message};
        """)
        check("the page sees its job pause offline when the origin goes away", r.get("state") == "paused-offline", r)
        # The status page, opened in another tab while the job is paused, shows it paused at first paint.
        example_tab = driver.current_window_handle
        driver.switch_to.new_window("tab")
        driver.get(node + "/")
        r = driver.execute_script("""
            const card = document.getElementById('job-offline');
            return card && {cls: card.className, badge: card.querySelector('.badge').textContent, text: card.textContent,
                            first: document.querySelector('#jobs li').id};""")
        driver.save_screenshot(os.path.join(shots, "status-page-paused-offline.png"))
        check("the status page shows the paused job as paused at first paint, first in the list, with its reason",
              r and "state-paused-offline" in r["cls"] and r["badge"] == "paused-offline" and r["first"] == "job-offline"
              and "origin" in r["text"], r)
        driver.close()
        driver.switch_to.window(example_tab)
        start(flaky_args, log)
        r = run_js(driver, """
            await example.finished(pausedJob);
            const [response] = await pausedJob.matchAll();
            return {result: pausedJob.result, seen, sha: await example.sha256(response)};
        """)
        check("the page sees it resume and succeed when the origin is back",
              r.get("result") == "success" and "paused-offline" in r.get("seen", []) and r["seen"][-1] == "success", r)
        check("the resumed file's sha256 is right", r.get("sha") == digest["big.bin"], r.get("sha"))

        # 4. The status page tells the truth at first paint: a failed job in red (its bar not full), an aborted one
        #    grey, the running one first, the dead peer "unreachable", the node's totals in the header.
        missing = f"{origin}/no/such/file-with-a-rather-long-name-0123456789abcdef0123456789abcdef.bin"
        status, _ = node_api(node, "POST", "/v1/web/jobs", token, {"id": "failed", "title": missing, "requests": [{"url": missing}]})
        failed = wait_job(node, "failed", lambda j: j["state"] == "failure", 30)
        check("a job of a missing file fails", failed and failed["failureReason"] == "bad-status", failed)
        status, _ = node_api(node, "POST", "/v1/web/jobs", token, {"id": "status-page", "title": "Big model",
                                                                    "requests": [{"url": f"{origin}/big.bin"}]})
        check("a job started with the token", status == 201, status)
        wait_job(node, "status-page", lambda j: j["downloaded"] > 0, 30)
        driver.get(node + "/")
        r = driver.execute_script("""
            const card = (id) => document.getElementById('job-' + id);
            const bar = (id) => document.querySelector(`progress[data-job="${id}"]`);
            const peer = document.querySelector('#peers li.peer');
            const totals = Object.fromEntries([...document.querySelectorAll('#totals dd')].map((d) => [d.dataset.total, d.textContent]));
            return {
              empties: ['jobs-empty', 'blobs-empty', 'peers-empty'].map((id) => document.getElementById(id).hidden),
              first: document.querySelector('#jobs li').id,
              running: card('status-page') && card('status-page').className,
              failed: card('failed') && {cls: card('failed').className, badge: card('failed').querySelector('.badge').textContent,
                                         value: bar('failed').value, max: bar('failed').max,
                                         title: card('failed').querySelector('h3').textContent,
                                         hover: card('failed').querySelector('h3').title,
                                         color: getComputedStyle(card('failed').querySelector('.badge')).color},
              aborted: card('to-abort') && {cls: card('to-abort').className, badge: card('to-abort').querySelector('.badge').textContent},
              peer: peer && {state: peer.dataset.peerState, badge: peer.querySelector('.badge').textContent, text: peer.textContent},
              totals, node: document.getElementById('node').textContent};""")
        driver.save_screenshot(os.path.join(shots, "status-page-desktop.png"))
        check("first paint: no 'empty' placeholder over content, node named", r["empties"] == [True, True, True] and r["node"].startswith("node "), r)
        check("first paint: the running job comes first", r["first"] == "job-status-page" and "state-downloading" in (r["running"] or ""), r)
        check("first paint: the failed job is red with a bar that is not full, its URL title shortened (whole on hover)",
              r["failed"] and "state-failure" in r["failed"]["cls"] and r["failed"]["badge"] == "failed: bad-status"
              and r["failed"]["value"] < r["failed"]["max"] and r["failed"]["title"] == missing.rsplit("/", 1)[1]
              and r["failed"]["hover"].startswith(missing) and r["failed"]["color"] == "rgb(197, 48, 48)", r["failed"])
        check("first paint: the aborted job is marked aborted", r["aborted"] and "state-aborted" in r["aborted"]["cls"] and r["aborted"]["badge"] == "aborted", r["aborted"])
        check("first paint: the unreachable static peer is 'unreachable', not 'ok'",
              r["peer"] and r["peer"]["state"] == "unreachable" and r["peer"]["badge"] == "unreachable" and dead_peer in r["peer"]["text"], r["peer"])
        check("first paint: the header shows the node's totals",
              set(r["totals"]) == {"served to peers", "from peers", "from the origin", "hit rate", "cache"}
              and r["totals"]["from the origin"] != "0 B" and "(no limit)" in r["totals"]["cache"], r["totals"])
        driver.execute_script("document.getElementById('job-failed').scrollIntoView()")
        driver.save_screenshot(os.path.join(shots, "status-page-failed.png"))
        driver.set_window_size(412, 915)  # a phone
        driver.get(node + "/")
        r = run_js(driver, """
            const deadline = Date.now() + 30000;
            while (Date.now() < deadline) {
              const bar = document.querySelector('progress[data-job="status-page"]');
              // The bar is there at first paint (the snapshot); wait for the event stream to be open too.
              if (bar && bar.hasAttribute('value') && bar.value > 0 && bar.value < bar.max
                  && document.getElementById('live').textContent === 'live') {
                const card = document.getElementById('job-status-page');
                return {value: bar.value, max: bar.max, text: card.textContent,
                        abort: !!card.querySelector('button[data-abort]'), live: document.getElementById('live').textContent};
              }
              await new Promise((r) => setTimeout(r, 100));
            }
            return {error: 'no progress bar in progress'};
        """)
        shot = os.path.join(shots, "status-page-downloading.png")  # phone width
        driver.save_screenshot(shot)
        check("the status page shows the running job's progress bar (0 < value < max)",
              "error" not in r and 0 < r["value"] < r["max"] == len(files["big.bin"]), r)
        check("the job card shows rate, ETA, bytes per source and an abort button",
              "error" not in r and "/s" in r["text"] and "ETA" in r["text"] and "origin:" in r["text"] and r["abort"], r)
        check("the status page follows the job event stream", r.get("live") == "live", r)
        check(f"screenshot saved mid-download ({shot})", os.path.getsize(shot) > 1000)
        r = run_js(driver, """
            const deadline = Date.now() + 60000;
            while (Date.now() < deadline) {
              const bar = document.querySelector('progress[data-job="status-page"]');
              const card = document.getElementById('job-status-page');
              if (bar && card && card.textContent.includes('success') && bar.value === bar.max) {
                await new Promise((r) => setTimeout(r, 600));  // the cache list reloads after a success
                return {value: bar.value, max: bar.max, blobs: document.querySelectorAll('#blobs li.blob').length,
                        abort: !!card.querySelector('button[data-abort]'), width: document.documentElement.scrollWidth};
              }
              await new Promise((r) => setTimeout(r, 100));
            }
            return {error: 'the job did not complete on the page'};
        """)
        driver.save_screenshot(os.path.join(shots, "status-page-done.png"))
        driver.execute_script("document.getElementById('job-failed').scrollIntoView()")
        driver.save_screenshot(os.path.join(shots, "status-page-phone-failed.png"))
        check("the progress bar completes and the abort button goes", "error" not in r and r["value"] == r["max"] and not r["abort"], r)
        check("the cache section lists the blobs", r.get("blobs", 0) >= 3, r)
        check("the page fits a phone-sized screen (no horizontal scroll)", r.get("width", 9999) <= 412, r)
    except WebDriverException as e:
        check("the browser runs the scenarios", False, str(e).splitlines()[0])
    finally:
        if driver is not None:
            driver.quit()
        stop_all()
        print(f"{PASSED} passed, {FAILED} failed")
        if FAILED and not keep:
            for name in ("node.log",):
                path = os.path.join(tmp, name)
                if os.path.exists(path):
                    print(f"--- last lines of {name}")
                    with open(path, errors="replace") as f:
                        print("".join(f.readlines()[-20:]))
        if keep:
            print(f"(output kept in {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
