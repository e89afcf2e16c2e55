"""test_server.py - `seek serve` end to end: the real binary on a free loopback port over a temporary
store made with `seek create` from the fixtures, driven by

  - raw HTTP from this script (routes, status codes, error shapes, CORS, limits, streaming framing,
    keep_alive and load/unload, blob uploads, cancellation when a client disconnects);
  - the official `ollama` and `openai` npm clients (tests/node/server_ollama.mjs, server_openai.mjs),
    whose greedy outputs must agree with each other (stream = non-stream, Ollama API = OpenAI API);
  - 16 concurrent clients on one model with SEEK_NUM_PARALLEL=4 (outputs equal the sequential ones);
  - wrk load on /api/generate and /api/version (requests/s, p99 and the server's RSS are printed);
  - a storm of malformed, oversized, truncated and slow requests while a normal client keeps working.

Environment: SEEK_BIN (default build/seek), SEEK_FIXTURES.
"""
import concurrent.futures as cf
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))

from harness import REPO, Reporter, fixtures_dir  # noqa: E402

SEEK = os.path.abspath(os.environ.get("SEEK_BIN", os.path.join(REPO, "build", "seek")))
FIX = fixtures_dir()
NODE_DIR = os.path.join(REPO, "tests", "node")
R = Reporter("test_server")


def check(ok, name, detail=""):
    """R.check with the detail as text, cut short (it is for reading, not for parsing)."""
    if isinstance(detail, bytes):
        detail = detail.decode(errors="replace")
    return R.check(ok, name, str(detail).replace("\n", "\\n")[:300])

MODEL, OTHER = "qwen-r1", "llama-r1"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


# ---- plumbing --------------------------------------------------------------------------------------

class Server:
    """A `seek serve` process on 127.0.0.1 with an ephemeral port (SEEK_HOST=127.0.0.1:0)."""

    def __init__(self, models, **env):
        e = dict(os.environ, SEEK_MODELS=models, SEEK_HOST="127.0.0.1:0")
        e.update({k: str(v) for k, v in env.items()})
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen([SEEK, "serve"], stdout=self.log, stderr=subprocess.PIPE, env=e)
        line = self.p.stderr.readline().decode()
        m = re.search(r"Listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(m.group(1))
        # keep draining stderr so the server never blocks on a full pipe
        self.errlog = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            self.errlog.append(line.decode(errors="replace"))

    def alive(self):
        return self.p.poll() is None

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.p.pid) as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return None
        return self.p.returncode


def request(port, method, path, body=None, headers=None, timeout=60):
    """One HTTP request; returns (status, headers dict (lower-case names), body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, h, data


def post(port, path, body, timeout=60):
    st, h, data = request(port, "POST", path, body, {"Content-Type": "application/json"}, timeout)
    try:
        j = json.loads(data) if data.strip() else None
    except ValueError:
        j = None
    return st, j, h, data


def stream_lines(port, path, body, timeout=60):
    """POSTs and returns (status, content-type, [decoded NDJSON objects or SSE data strings])."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    ctype = r.getheader("Content-Type", "")
    out = []
    for raw in r.read().decode().split("\n"):
        if not raw.strip():
            continue
        if raw.startswith("data: "):
            out.append(raw[6:])
        else:
            out.append(json.loads(raw))
    c.close()
    return r.status, ctype, out


def raw_exchange(port, payload, timeout=5.0, hold=0.0):
    """Sends raw bytes, optionally waits, and returns what came back (b'' when the server closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if payload:
            s.sendall(payload)
        if hold:
            time.sleep(hold)
        chunks = []
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not d:
                break
            chunks.append(d)
            if response_complete(b"".join(chunks)):
                break
        return b"".join(chunks)
    finally:
        s.close()


def response_complete(buf):
    """True once buf holds a whole response with a Content-Length (keep-alive would not close)."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    return bool(m) and len(body) >= int(m.group(1))


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else None


class FakeRegistry:
    """Something listening where a registry should be that answers 404 to everything."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            def _nf(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _nf

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def run_node(script, args, timeout=150):
    p = subprocess.run(["node", os.path.join(NODE_DIR, script)] + args, capture_output=True, text=True,
                       timeout=timeout, cwd=NODE_DIR)
    result = {}
    n = 0
    for line in p.stdout.splitlines():
        if line.startswith("PASS ") or line.startswith("FAIL "):
            n += 1
            parts = line.split(" ", 2)
            check(parts[0] == "PASS", parts[1], parts[2] if len(parts) > 2 else "")
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
    check(n > 0 and (p.returncode == 0 or any(l.startswith("FAIL") for l in p.stdout.splitlines())),
            "node.%s.ran" % script, (p.stderr or "")[-800:])
    return result


# ---- the tests ---------------------------------------------------------------------------------------

def test_basics(port):
    st, h, body = request(port, "GET", "/")
    check(st == 200 and body == b"seek is running", "root.get")
    st, h, body = request(port, "HEAD", "/")
    check(st == 200 and body == b"", "root.head")
    st, j, h, _ = post(port, "/api/version", {})
    check(st == 405 and j and "error" in j, "version.post_405", str(st))
    st, h, body = request(port, "GET", "/api/version")
    check(st == 200 and json.loads(body)["version"], "version.get")
    st, h, body = request(port, "GET", "/api/nothing")
    check(st == 404 and "error" in json.loads(body), "route.unknown_404")
    st, h, body = request(port, "GET", "/api/generate")
    check(st == 405 and "error" in json.loads(body), "route.wrong_method_405")
    st, h, body = request(port, "GET", "/v1/nothing")
    e = json.loads(body).get("error")
    check(st == 404 and isinstance(e, dict) and "message" in e and "type" in e, "route.openai_404_shape", body[:200])

    # CORS (Ollama's default origins) and the Host check against DNS rebinding
    st, h, _ = request(port, "OPTIONS", "/api/chat", headers={"Origin": "http://localhost:3000",
                                                              "Access-Control-Request-Method": "POST"})
    check(st == 204 and h.get("access-control-allow-origin") == "http://localhost:3000" and
            "POST" in h.get("access-control-allow-methods", ""), "cors.preflight", str((st, h)))
    st, h, _ = request(port, "GET", "/api/tags", headers={"Origin": "http://127.0.0.1:8080"})
    check(st == 200 and h.get("access-control-allow-origin") == "http://127.0.0.1:8080", "cors.allowed_origin")
    st, h, _ = request(port, "GET", "/api/tags", headers={"Origin": "https://evil.example"})
    check(st == 403, "cors.foreign_origin_403", str(st))
    st, h, _ = request(port, "GET", "/api/tags", headers={"Host": "evil.example"})
    check(st == 403, "host.rebinding_403", str(st))

    # bad bodies
    for name, body in [("empty", b""), ("not_json", b"{nope"), ("array", b"[1,2]"), ("bad_utf8", b'{"model":"\xff\xfe"}'),
                       ("nul", b'{"model":"a\\u0000b"}'), ("deep", b"[" * 100000 + b"]" * 100000)]:
        st, j, h, _ = post(port, "/api/generate", body)
        check(st == 400 and j and isinstance(j.get("error"), str), "body.%s_400" % name, str(st))
    st, j, h, _ = post(port, "/v1/chat/completions", b"{nope")
    check(st == 400 and isinstance(j["error"], dict) and j["error"]["type"] == "invalid_request_error",
            "body.openai_error_shape", str(j))
    resp = raw_exchange(port, b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 40000000\r\n"
                              b"Content-Type: application/json\r\n\r\n{")
    check(status_of(resp) == 413, "body.too_large_413", resp.split(b"\r\n")[0])

    # type checks on every field kind
    base = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
    for field, val in [("prompt", 5), ("stream", "yes"), ("options", []), ("system", {}), ("raw", 1), ("images", "x"),
                       ("think", 3), ("format", 7), ("format", "xml"), ("keep_alive", True), ("keep_alive", "5 minutes"),
                       ("model", 12)]:
        b = dict(base)
        b[field] = val
        st, j, h, _ = post(port, "/api/generate", b)
        check(st == 400 and "error" in (j or {}), "types.generate.%s=%s" % (field, json.dumps(val)), str((st, j)))
    for opt, val in [("temperature", "0"), ("top_k", "1"), ("num_predict", 1.5e12), ("num_ctx", 10**12),
                     ("stop", 5), ("stop", [1]), ("seed", "x"), ("repeat_last_n", 10**6), ("use_mmap", 1), ("stop", ["a"] * 17)]:
        b = dict(base)
        b["options"] = {"num_predict": 1, opt: val}
        st, j, h, _ = post(port, "/api/generate", b)
        check(st == 400, "types.options.%s=%s" % (opt, json.dumps(val)[:20]), str((st, j)))
    st, j, h, _ = post(port, "/api/generate", {"model": "no-such", "prompt": "hi"})
    check(st == 404 and "not found" in j["error"], "generate.unknown_404", str(j))
    st, j, h, _ = post(port, "/api/generate", {"model": "bad name!", "prompt": "hi"})
    check(st in (400, 404), "generate.bad_name", str(st))
    for ka in ["1h30m", "90s", 300, -1, "-1m", "0.5h", "250ms"]:
        st, j, h, _ = post(port, "/api/generate", dict(base, keep_alive=ka))
        check(st == 200 and j["done"], "keep_alive.accepts_%s" % ka, str((st, j)))

    # response shapes, raw: non-stream generate and the NDJSON stream
    st, j, h, _ = post(port, "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False,
                                              "options": {"temperature": 0, "num_predict": 5}})
    check(st == 200 and h.get("content-type", "").startswith("application/json") and ISO.match(j["created_at"]) and
            j["done"] is True and j["done_reason"] == "length" and j["eval_count"] == 5 and
            all(isinstance(j[k], int) and j[k] > 0 for k in ("total_duration", "prompt_eval_count", "eval_duration")),
            "generate.shape", str(j))
    st, ctype, lines = stream_lines(port, "/api/generate", {"model": MODEL, "prompt": "hi",
                                                             "options": {"temperature": 0, "num_predict": 5}})
    check(st == 200 and ctype == "application/x-ndjson" and len(lines) >= 2 and lines[-1]["done"] and
            not any(x["done"] for x in lines[:-1]) and
            "".join(x.get("thinking", "") for x in lines) == j.get("thinking", "") and
            "".join(x["response"] for x in lines) == j["response"], "generate.ndjson_stream", str(lines[:2]))
    st, ctype, events = stream_lines(port, "/v1/chat/completions", {
        "model": MODEL, "stream": True, "max_tokens": 5, "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}]})
    check(st == 200 and ctype.startswith("text/event-stream") and events[-1] == "[DONE]" and
            json.loads(events[0])["object"] == "chat.completion.chunk", "openai.sse_framing", str(events[:2]))
    st, j, h, _ = post(port, "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False, "format": "json",
                                              "options": {"temperature": 0, "num_predict": 3}})
    check(st == 200 and j["done"], "generate.format_json_accepted")
    st, j, h, _ = post(port, "/api/chat", {"model": MODEL, "stream": False, "format": {"type": "object"},
                                          "messages": [{"role": "user", "content": "hi"}],
                                          "options": {"temperature": 0, "num_predict": 3}})
    check(st == 200 and j["done"] and j["message"]["role"] == "assistant", "chat.format_schema_accepted")

    # empty prompt: load, then keep_alive 0: unload
    st, j, h, _ = post(port, "/api/generate", {"model": OTHER})
    check(st == 200 and j["done_reason"] == "load" and j["response"] == "", "generate.empty_loads", str(j))
    st, h, body = request(port, "GET", "/api/ps")
    names = [m["name"] for m in json.loads(body)["models"]]
    check(any(n.startswith(OTHER) for n in names), "ps.after_load", str(names))
    st, j, h, _ = post(port, "/api/generate", {"model": OTHER, "keep_alive": 0})
    check(st == 200 and j["done_reason"] == "unload", "generate.keep_alive0_unloads", str(j))

    # create with the legacy "modelfile" string, show verbose, delete
    st, j, h, _ = post(port, "/api/create", {"name": "legacy", "stream": False,
                                            "modelfile": "FROM %s\nPARAMETER top_k 7\nSYSTEM Be brief." % MODEL})
    check(st == 200 and j == {"status": "success"}, "create.legacy_modelfile", str((st, j)))
    st, j, h, _ = post(port, "/api/show", {"model": "legacy", "verbose": True})
    check(st == 200 and j["system"] == "Be brief." and re.search(r"top_k\s+7", j["parameters"]) and
          isinstance(j["model_info"]["tokenizer.ggml.tokens"], list), "show.verbose_and_legacy", str(j.get("parameters")))
    st, h, body = request(port, "DELETE", "/api/delete", {"model": "legacy"})
    check(st == 200, "delete.legacy")
    st, j, h, _ = post(port, "/api/create", {"model": "x", "stream": False, "modelfile": "FORM nothing"})
    check(st == 400 and "error" in j, "create.bad_modelfile_400", str(j))
    st, j, h, _ = post(port, "/api/create", {"model": "x", "from": MODEL, "quantize": "Q9_Z"})
    check(st == 400, "create.bad_quantize_400", str(j))

    # embeddings limits, completions suffix
    st, j, h, _ = post(port, "/api/embed", {"model": MODEL, "input": "word " * 400, "truncate": False,
                                           "options": {"num_ctx": 128}})
    check(st == 400 and "error" in j, "embed.too_long_no_truncate_400", str((st, j)))
    st, j, h, _ = post(port, "/api/embed", {"model": MODEL, "input": "word " * 400, "options": {"num_ctx": 128}})
    check(st == 200 and len(j["embeddings"]) == 1, "embed.truncated", str(st))
    st, j, h, _ = post(port, "/v1/completions", {"model": MODEL, "prompt": "a", "suffix": "b"})
    check(st == 400 and isinstance(j["error"], dict), "completions.suffix_400")

    # blobs
    st, h, _ = request(port, "HEAD", "/api/blobs/sha256:" + "1" * 64)
    check(st == 404, "blobs.head_missing_404")
    st, h, body = request(port, "HEAD", "/api/blobs/notadigest")
    check(st == 400, "blobs.head_bad_digest_400")
    data = os.urandom(100000)
    import hashlib
    dg = "sha256:" + hashlib.sha256(data).hexdigest()
    st, h, _ = request(port, "POST", "/api/blobs/" + dg, data)
    st2, h, _ = request(port, "HEAD", "/api/blobs/" + dg)
    check(st == 201 and st2 == 200, "blobs.upload_verify", str((st, st2)))


def test_cancel(models):
    """With one slot, a disconnected stream must free it: the next request finishes quickly.  The
    same server has a queue of 2, so a burst gets 503s."""
    s = Server(models, SEEK_NUM_PARALLEL=1, SEEK_MAX_QUEUE=2)
    try:
        post(s.port, "/api/generate", {"model": MODEL, "prompt": "x", "stream": False, "options": {"num_predict": 1}})
        long_body = {"model": MODEL, "prompt": "Write a long story.", "options": {"num_predict": 100000, "num_ctx": 4096}}
        # streamed: read two lines, then hang up
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        c.request("POST", "/api/generate", body=json.dumps(long_body))
        r = c.getresponse()
        r.readline()
        r.readline()
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        t0 = time.time()
        st, j, h, _ = post(s.port, "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False,
                                                    "options": {"num_predict": 2}})
        dt = time.time() - t0
        check(st == 200 and dt < 3, "cancel.stream_disconnect_frees_slot", "next request took %.2fs" % dt)
        # not streamed: hang up while it runs
        sk = socket.create_connection(("127.0.0.1", s.port))
        b = json.dumps(dict(long_body, stream=False)).encode()
        sk.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
        time.sleep(0.3)
        sk.close()
        t0 = time.time()
        st, j, h, _ = post(s.port, "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False,
                                                    "options": {"num_predict": 2}})
        dt = time.time() - t0
        check(st == 200 and dt < 3, "cancel.nonstream_disconnect_frees_slot", "next request took %.2fs" % dt)
        burst = {"model": MODEL, "prompt": "Go on", "stream": False, "options": {"num_predict": 60}}
        with cf.ThreadPoolExecutor(8) as ex:
            res = list(ex.map(lambda _: post(s.port, "/api/generate", burst), range(8)))
        codes = sorted(r[0] for r in res)
        check(codes.count(200) >= 3 and codes.count(503) >= 1 and set(codes) <= {200, 503} and
              all("error" in r[1] for r in res if r[0] == 503), "queue.full_503", str(codes))
        rc = s.stop()
        check(rc == 0, "serve.sigterm_exit_0", str(rc))
    finally:
        s.stop()


def test_concurrency(port):
    prompts = ["Question number %d: what is %d + %d?" % (i, i, 2 * i) for i in range(16)]

    def gen(p):
        st, j, h, _ = post(port, "/api/generate", {"model": MODEL, "prompt": p, "stream": False,
                                                  "options": {"temperature": 0, "seed": 7, "num_predict": 16}},
                           timeout=120)
        return st, (j or {}).get("thinking", ""), (j or {}).get("response", "")

    seq = [gen(p) for p in prompts]
    t0 = time.time()
    with cf.ThreadPoolExecutor(16) as ex:
        par = list(ex.map(gen, prompts))
    dt = time.time() - t0
    check(all(s[0] == 200 for s in seq + par), "concurrency.all_ok")
    same = sum(1 for a, b in zip(seq, par) if a == b)
    check(same == 16, "concurrency.16_equal_sequential", "%d/16 equal, %.2fs" % (same, dt))
    check(len(set(s[1] + s[2] for s in seq)) > 1, "concurrency.outputs_differ_per_prompt")
    # the same through the chat API, streamed, 16 at once
    msgs = [[{"role": "user", "content": p}] for p in prompts[:8]]

    def chat(m, stream):
        body = {"model": MODEL, "messages": m, "stream": stream, "options": {"temperature": 0, "num_predict": 12}}
        if stream:
            st, _, lines = stream_lines(port, "/api/chat", body, timeout=120)
            return st, "".join(x["message"].get("thinking", "") + "|" + x["message"]["content"] for x in lines
                               if not x["done"]).replace("|", "")
        st, j, h, _ = post(port, "/api/chat", body, timeout=120)
        return st, j["message"].get("thinking", "") + j["message"]["content"]

    with cf.ThreadPoolExecutor(16) as ex:
        a = list(ex.map(lambda m: chat(m, True), msgs + msgs))
    b = [chat(m, False) for m in msgs]
    check(a[:8] == b and a[8:] == b, "concurrency.chat_stream_parallel_equals_sequential")


WRK_LUA = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url, seconds, conns, lua=None):
    args = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "10s"]
    if lua:
        args += ["-s", lua]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return rps, p99, total, errs, out


def test_load(srv, tmp):
    if not shutil.which("wrk"):
        check(False, "load.wrk_installed")
        return
    rss0 = srv.rss_kb()
    lua = os.path.join(tmp, "gen.lua")
    with open(lua, "w") as fh:
        fh.write(WRK_LUA % json.dumps({"model": MODEL, "prompt": "Hello there", "stream": False,
                                       "options": {"temperature": 0, "num_predict": 4}}))
    rps, p99, total, errs, out = wrk("http://127.0.0.1:%d/api/generate" % srv.port, 8, 8, lua)
    rss1 = srv.rss_kb()
    print("LOAD /api/generate (num_predict 4, 8 connections, 8 s): %.1f req/s, p99 %s, %d requests, %d errors"
          % (rps, p99, total, errs))
    check(errs == 0 and total > 0, "load.generate_no_errors", "%d errors" % errs)
    rps2, p99b, total2, errs2, out2 = wrk("http://127.0.0.1:%d/api/version" % srv.port, 5, 32)
    rss2 = srv.rss_kb()
    print("LOAD GET /api/version (32 connections, 5 s): %.0f req/s, p99 %s, %d requests, %d errors"
          % (rps2, p99b, total2, errs2))
    print("LOAD server RSS: before %.1f MiB, after generate %.1f MiB, after version %.1f MiB"
          % (rss0 / 1024, rss1 / 1024, rss2 / 1024))
    check(errs2 == 0 and total2 > 1000, "load.version_no_errors", "%d errors" % errs2)
    check(rss2 - rss0 < 128 * 1024, "load.rss_bounded", "%d KiB growth" % (rss2 - rss0))
    check(srv.alive(), "load.server_alive")


def hostile_payloads(rng):
    """Yields (name, bytes, hold_seconds) for one storm."""
    good = json.dumps({"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}).encode()

    def http_req(path, body, extra=b"", method=b"POST", cl=None):
        n = len(body) if cl is None else cl
        return (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra +
                b"Content-Length: " + str(n).encode() + b"\r\n\r\n" + body)

    paths = [b"/api/generate", b"/api/chat", b"/api/embed", b"/api/show", b"/api/create", b"/api/copy",
             b"/v1/chat/completions", b"/v1/completions", b"/v1/embeddings", b"/api/embeddings"]
    values = [0, -1, 1.5, 1e308, -1e308, 10**30, "x", "", True, None, [], {}, [[[]]], {"a": {}}, "\u202e\ufffd",
              "A" * 5000, [1, "a", None], 2**63, -(2**63)]
    fields = ["model", "prompt", "messages", "stream", "options", "system", "template", "format", "keep_alive", "raw",
              "think", "input", "name", "source", "destination", "from", "files", "parameters", "max_tokens",
              "temperature", "stop", "response_format", "stream_options", "reasoning_effort", "encoding_format",
              "truncate", "dimensions", "seed", "n", "tools", "images", "insecure", "modelfile", "quantize"]
    options = ["temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "presence_penalty",
               "frequency_penalty", "seed", "num_predict", "stop", "num_ctx", "num_thread", "think_budget", "num_gpu",
               "whatever"]
    base = {"model": MODEL, "prompt": "hi", "messages": [{"role": "user", "content": "hi"}], "input": "hi",
            "stream": False, "options": {"num_predict": 1}, "max_tokens": 1}
    for path in paths:
        for f in fields:
            for v in rng.sample(values, 6):
                b = dict(base)
                b[f] = v
                if f == "options" and (v is None or isinstance(v, dict)):
                    b[f] = dict(v or {}, num_predict=1)  # keep every generation short
                if f == "max_tokens" and isinstance(v, int) and not isinstance(v, bool) and v <= 0:
                    b[f] = 1
                yield "field", http_req(path, json.dumps(b).encode()), 0
        for o in options:
            for v in rng.sample(values, 5):
                b = dict(base)
                b["options"] = {"num_predict": 1, o: v}
                if o == "num_predict" and (v is None or v in (-1, 0)):
                    b["options"][o] = 1
                yield "option", http_req(path, json.dumps(b).encode()), 0
    for i in range(150):
        yield "random", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600))), 0
        yield "random_body", http_req(rng.choice(paths), bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))), 0
        cut = rng.randint(1, len(good) - 1)
        yield "truncated_json", http_req(b"/api/generate", good[:cut]), 0
        yield "bad_utf8", http_req(b"/api/chat", b'{"model":"' + bytes([0xc0 + i % 64, 0xff]) + b'","messages":[]}'), 0
    for n in (10, 1000, 5000, 20000, 200000):
        yield "deep_array", http_req(b"/api/generate", b"[" * n + b"]" * n), 0
        yield "deep_object", http_req(b"/v1/chat/completions", b'{"a":' * n + b"1" + b"}" * n), 0
    for i in range(20):
        yield "short_body", http_req(b"/api/generate", good[:10], cl=len(good) + 100), 0.3
        yield "long_cl", http_req(b"/api/chat", b"{", cl=10**7), 0.2
        yield "huge_header", b"GET /api/version HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", 0
        yield "many_headers", b"GET /api/version HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n", 0
        yield "bad_method", b"BREW /api/generate HTTP/1.1\r\nHost: x\r\n\r\n", 0
        yield "bad_version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 0
        yield "chunked_garbage", (b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"zz\r\nabc\r\n0\r\n\r\n"), 0
        yield "huge_prompt", http_req(b"/api/generate", json.dumps(dict(base, prompt="a" * (5 << 20))).encode()), 0
        yield "oversize", http_req(b"/api/chat", b"{", cl=33 << 20), 0
        yield "path_traversal", http_req(b"/api/blobs/sha256:../../etc/passwd", b""), 0
        yield "long_url", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 0


INCOMPLETE = {"random", "short_body", "long_cl"}


def test_hostile(srv):
    port = srv.port
    post(port, "/api/generate", {"model": MODEL, "prompt": "warm up", "stream": False, "options": {"num_predict": 1}})
    rng = random.Random(1234)
    stop = threading.Event()
    normal = {"ok": 0, "fail": 0, "last": ""}

    def normal_client():
        while not stop.is_set():
            try:
                st, h, b = request(port, "GET", "/api/version", timeout=20)
                st2, j, h, _ = post(port, "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False,
                                                            "options": {"num_predict": 2}}, timeout=60)
                if st == 200 and st2 == 200 and j["done"]:
                    normal["ok"] += 1
                else:
                    normal["fail"] += 1
                    normal["last"] = "%s %s" % (st, st2)
            except Exception as e:  # noqa: BLE001 - any failure of the normal client counts
                normal["fail"] += 1
                normal["last"] = repr(e)

    # slowloris: connections that dribble headers and never finish
    slow = []
    for i in range(100):
        try:
            sk = socket.create_connection(("127.0.0.1", port), timeout=5)
            sk.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sk)
        except OSError:
            pass

    rss0 = srv.rss_kb()
    th = threading.Thread(target=normal_client)
    th.start()
    payloads = list(hostile_payloads(rng))
    rng.shuffle(payloads)  # both halves alike, so the second half shows whether memory keeps growing
    halves = [payloads[:len(payloads) // 2], payloads[len(payloads) // 2:]]
    statuses = {}
    five_hundreds = []

    slowest = []

    def fire(item):
        name, data, hold = item
        t = time.time()
        try:
            # incomplete requests get no answer (the server waits for the rest): give up sooner
            resp = raw_exchange(port, data, timeout=1.5 if name in INCOMPLETE else 10, hold=hold)
        except OSError:
            resp = b""
        slowest.append((time.time() - t - hold, name, data[:160]))
        st = status_of(resp)
        return name, st, resp[:300]

    t0 = time.time()
    rss_mid = 0
    for half in halves:
        with cf.ThreadPoolExecutor(16) as ex:
            for k, (name, st, head) in enumerate(ex.map(fire, half)):
                statuses[st] = statuses.get(st, 0) + 1
                if st is not None and st >= 500 and st not in (503, 505):
                    five_hundreds.append((name, head))
                if k % 200 == 0:
                    for sk in slow:
                        try:
                            sk.send(b"X-Slow: 1\r\n")
                        except OSError:
                            pass
        rss_mid = rss_mid or srv.rss_kb()
    dt = time.time() - t0
    stop.set()
    th.join(timeout=60)
    for sk in slow:
        sk.close()
    time.sleep(0.5)
    rss1 = srv.rss_kb()
    print("HOSTILE %d requests in %.1fs; statuses %s; normal client %d ok / %d failed; RSS %.1f -> %.1f (half way) -> %.1f MiB" % (
        len(payloads), dt, json.dumps({str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))}),
        normal["ok"], normal["fail"], rss0 / 1024, rss_mid / 1024, rss1 / 1024))
    slowest.sort(reverse=True)
    print("HOSTILE slowest: " + "; ".join("%.2fs %s %r" % x for x in slowest[:3]))
    check(len(payloads) >= 2000, "hostile.count", str(len(payloads)))
    if not check(srv.alive(), "hostile.server_alive"):
        print("".join(srv.errlog[-60:]))
    check(normal["fail"] == 0 and normal["ok"] > 0, "hostile.normal_client_unaffected",
            "%d ok, %d failed (%s)" % (normal["ok"], normal["fail"], normal["last"]))
    check(not five_hundreds, "hostile.no_5xx", str(five_hundreds[:3]))
    check(rss1 - rss0 < 128 * 1024, "hostile.rss_bounded", "%d KiB growth" % (rss1 - rss0))
    check(rss1 - rss_mid < 24 * 1024, "hostile.rss_stable_second_half", "%d KiB growth" % (rss1 - rss_mid))
    if srv.alive():
        st, h, b = request(port, "GET", "/api/version")
        check(st == 200, "hostile.still_answers")


def main():
    only = set(sys.argv[1:])  # e.g. "hostile load": run just those sections (for development)

    def want(section):
        return not only or section in only

    if not os.path.exists(SEEK):
        R.fail("seek_binary", SEEK + " missing")
        R.finish()
    tmp = tempfile.mkdtemp(prefix="seek-server-test-")
    models = os.path.join(tmp, "models")
    servers = []
    reg = FakeRegistry()
    try:
        for name, f in [(MODEL, "qwen2-mini-Q8_0.gguf"), (OTHER, "llama-mini-Q8_0.gguf")]:
            mf = os.path.join(tmp, "Modelfile." + name)
            with open(mf, "w") as fh:
                fh.write("FROM %s\n" % os.path.join(FIX, f))
            p = subprocess.run([SEEK, "create", name, "-f", mf], capture_output=True, text=True,
                               env=dict(os.environ, SEEK_MODELS=models), timeout=120)
            check(p.returncode == 0, "setup.create_" + name, "" if p.returncode == 0 else p.stderr[-300:])
        srv = Server(models, SEEK_NUM_PARALLEL=4)
        servers.append(srv)
        port = srv.port
        if want("basics"):
            test_basics(port)
        o = a = {}
        if want("clients"):
            o = run_node("server_ollama.mjs", ["http://127.0.0.1:%d" % port, MODEL, OTHER,
                                           os.path.join(FIX, "qwen2-mini-Q8_0.gguf"), "127.0.0.1:%d" % reg.port])
            a = run_node("server_openai.mjs", ["http://127.0.0.1:%d/v1" % port, MODEL])
        if o.get("chat") and a.get("chat"):
            check(o["chat"]["thinking"] == a["chat"]["thinking"] and o["chat"]["content"] == a["chat"]["content"],
                    "cross_api.chat_greedy_equal", json.dumps([o["chat"]["thinking"][:40], a["chat"]["thinking"][:40]]))
            check(o["chat"]["eval_count"] == a["chat"]["completion_tokens"] and
                    o["chat"]["prompt_eval_count"] == a["chat"]["prompt_tokens"], "cross_api.token_counts_equal")
            check(o["chat_nothink"]["content"] == a["chat_nothink"]["content"], "cross_api.chat_nothink_equal")
            ea, eb = o["embedding"], a["embedding"]
            check(len(ea) == len(eb) and all(abs(x - y) < 1e-5 for x, y in zip(ea, eb)), "cross_api.embedding_equal")
        elif want("clients"):
            R.fail("cross_api.results", "missing node results")
        if want("concurrency"):
            test_concurrency(port)
        if want("cancel"):
            test_cancel(models)
        if want("load"):
            test_load(srv, tmp)
        if want("hostile"):
            test_hostile(srv)
        rc = srv.stop()
        check(rc == 0, "serve.clean_shutdown", str(rc))
        if rc != 0:
            print("".join(srv.errlog[-20:]))
    finally:
        for s in servers:
            s.stop()
        reg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
