"""registry_proxy.py - a misbehaving HTTP proxy that test_registry.py puts between seek and a real
docker-registry on loopback, to count and disturb what a pull sees.

Proxy(upstream) listens on 127.0.0.1:<free port> and forwards every request to upstream
("http://127.0.0.1:PORT"), streaming answers in 256 KB pieces.  Knobs (set between pulls):
  limit          stop relaying blob bytes once this many have gone out in total: the connections
                 then hang (nothing more is sent) until reset(); `tripped` is set
  fail_5xx       answer this many requests with 503 before passing them through
  auth           require "Authorization: Bearer <TOKEN>"; otherwise 401 with a Bearer challenge
                 whose realm is this proxy's /token (which checks service and scope)
  strip_range    drop the Range header (the registry then sends 200 and the whole blob)
  flip_at        flip the blob byte at this offset on its way through
  redirect       answer blob GETs with 307 to http://localhost:<port>/_storage/... (another host
                 name, like blob storage); those requests must not carry Authorization
Counters: blob_bytes (per digest), n_503, n_401, n_token, n_storage, storage_auth_leaks,
ranged (blob GETs with a Range header).
"""
import http.client
import http.server
import re
import threading
import time
import urllib.parse

TOKEN = "seek-test-token-42"
SERVICE = "seek-test-registry"
PIECE = 256 << 10


class Proxy:
    def __init__(self, upstream):
        u = urllib.parse.urlparse(upstream)
        self.up_host, self.up_port = u.hostname, u.port
        self.lock = threading.Lock()
        self.reset()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.handle(self, "GET")

            def do_HEAD(self):
                proxy.handle(self, "HEAD")

            def do_PUT(self):
                proxy.handle(self, "PUT")

            def do_POST(self):
                proxy.handle(self, "POST")

            def do_PATCH(self):
                proxy.handle(self, "PATCH")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.limit = None
            self.fail_5xx = 0
            self.auth = False
            self.strip_range = False
            self.flip_at = None
            self.redirect = False
            self.blob_bytes = {}
            self.n_503 = self.n_401 = self.n_token = self.n_storage = 0
            self.storage_auth_leaks = 0
            self.ranged = 0
            self.tripped = False
            self.generation = getattr(self, "generation", 0) + 1

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def total_blob_bytes(self):
        with self.lock:
            return sum(self.blob_bytes.values())

    # ---- request handling ----------------------------------------------------------------

    def reply(self, h, code, headers=(), body=b""):
        h.send_response(code)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def handle(self, h, method):
        path = h.path
        body = None
        n = int(h.headers.get("Content-Length") or 0)
        if n:
            body = h.rfile.read(n)
        if path.startswith("/token"):
            q = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
            with self.lock:
                self.n_token += 1
            ok = q.get("service") == [SERVICE] and q.get("scope", [""])[0].startswith("repository:")
            self.reply(h, 200 if ok else 400, [("Content-Type", "application/json")],
                       b'{"token": "%s"}' % TOKEN.encode() if ok else b'{"error": "bad service or scope"}')
            return
        storage = path.startswith("/_storage/")
        if storage:
            with self.lock:
                self.n_storage += 1
                if h.headers.get("Authorization"):
                    self.storage_auth_leaks += 1
            path = path[len("/_storage"):]
        else:
            with self.lock:
                fail = self.fail_5xx > 0
                if fail:
                    self.fail_5xx -= 1
                    self.n_503 += 1
            if fail:
                self.reply(h, 503, [("Content-Type", "application/json")],
                           b'{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}')
                return
            if self.auth and h.headers.get("Authorization") != "Bearer " + TOKEN:
                with self.lock:
                    self.n_401 += 1
                m = re.match(r"/v2/([^/]+/[^/]+)/", path)
                scope = "repository:%s:pull" % (m.group(1) if m else "x/y")
                chal = 'Bearer realm="http://127.0.0.1:%d/token",service="%s",scope="%s"' % (self.port, SERVICE, scope)
                self.reply(h, 401, [("WWW-Authenticate", chal), ("Content-Type", "application/json")],
                           b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
                return
        is_blob = method == "GET" and "/blobs/sha256:" in path
        if is_blob and self.redirect and not storage:
            self.reply(h, 307, [("Location", "http://localhost:%d/_storage%s" % (self.port, path))])
            return
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("host", "authorization", "connection", "content-length")}
        if is_blob and h.headers.get("Range"):
            with self.lock:
                self.ranged += 1
        if is_blob and self.strip_range:
            headers.pop("Range", None)
        headers["Host"] = "%s:%d" % (self.up_host, self.up_port)
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=60)
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                h.send_header(k, v)
        if r.getheader("Content-Length") is None and method != "HEAD":
            data = r.read()
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            conn.close()
            return
        h.end_headers()
        if method == "HEAD":
            conn.close()
            return
        digest = path.rsplit("/", 1)[-1] if is_blob else None
        pos = 0
        cr = r.getheader("Content-Range")
        if cr:
            pos = int(re.match(r"bytes (\d+)-", cr).group(1))
        gen = self.generation
        while True:
            piece = r.read(PIECE)
            if not piece:
                break
            if digest and r.status in (200, 206):
                with self.lock:
                    if self.limit is not None:
                        room = self.limit - sum(self.blob_bytes.values())
                        if room < len(piece):
                            piece = piece[:max(room, 0)]
                            self.tripped = True
                    if self.flip_at is not None and pos <= self.flip_at < pos + len(piece):
                        i = self.flip_at - pos
                        piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1:]
                    self.blob_bytes[digest] = self.blob_bytes.get(digest, 0) + len(piece)
                    tripped = self.tripped
                if piece:
                    h.wfile.write(piece)
                    h.wfile.flush()
                pos += len(piece)
                if tripped:
                    # hang, sending nothing more, until the test resets the proxy
                    while self.generation == gen:
                        time.sleep(0.05)
                    h.close_connection = True
                    break
            else:
                h.wfile.write(piece)
        conn.close()
