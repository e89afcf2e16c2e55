"""test_registry.py - `seek push` / `seek pull` against a real OCI registry on loopback (Debian's
docker-registry, started here with a temporary config: filesystem storage in a temp dir, plain
http on a free 127.0.0.1 port), with tests/registry_proxy.py in between where a pull has to be
counted or disturbed.

What it shows:
  - push a `seek create`d model (fixture GGUF), pull it into an empty store: every blob hashes to
    its name, the manifest is byte-identical (same ID as the registry's digest), `seek run` works
    from the pulled store, and `seek run` of a missing name pulls it first
  - an interrupted pull (the proxy stops relaying after N bytes, seek is SIGKILLed) resumes and
    transfers only the remaining bytes (both numbers are printed)
  - a corrupted blob (a byte flipped in the registry's storage, or by the proxy in the middle of a
    parallel download) is rejected: digest mismatch, no manifest, no bad blob in the store
  - a 401 bearer challenge is answered with a token from the realm; blob redirects to another
    host do not carry the Authorization header
  - 503s are retried, a registry that keeps failing gives a clear error, a server that ignores
    Range still works (one stream), unknown models and plain http without --insecure fail clearly

Environment: SEEK_BIN (default ./build/seek), SEEK_FIXTURES.  Needs /usr/bin/docker-registry.
"""
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
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "ref"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import gguf_py as G  # noqa: E402
from harness import REPO, Reporter, fixtures_dir  # noqa: E402
from registry_proxy import Proxy  # noqa: E402

SEEK = os.path.abspath(os.environ.get("SEEK_BIN", os.path.join(REPO, "build", "seek")))
FIX = fixtures_dir()
Q8 = os.path.join(FIX, "qwen2-mini-Q8_0.gguf")
REGISTRY_BIN = "/usr/bin/docker-registry"
R = Reporter("test_registry")


def check(ok, name, detail=""):
    """R.check that prints the (long) detail only when the check fails."""
    return R.check(ok, name, "" if ok else detail)


BIG_FLOATS = 32 << 20  # a 128 MB model for the resume and corruption tests


def seek(root, *args, timeout=300):
    env = dict(os.environ, SEEK_MODELS=root)
    p = subprocess.run([SEEK] + list(args), capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    return p.returncode, p.stdout, p.stderr


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def blob_files(root):
    d = os.path.join(root, "blobs")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def manifest_files(root):
    out = []
    for dirpath, _, files in os.walk(os.path.join(root, "manifests")):
        out += [os.path.join(dirpath, f) for f in files if not f.startswith(".")]
    return out


def check_store(root, what):
    """Every sha256-* blob hashes to its name and every manifest's blobs exist; no partials left."""
    ok = True
    for f in blob_files(root):
        p = os.path.join(root, "blobs", f)
        if f.startswith("sha256-") and sha256_file(p) != f[len("sha256-"):]:
            ok = R.fail(what + ": blob hashes to its name", f)
    for mf in manifest_files(root):
        with open(mf, "rb") as fh:
            m = json.loads(fh.read())
        for layer in [m["config"]] + m["layers"]:
            if not os.path.exists(os.path.join(root, "blobs", layer["digest"].replace(":", "-"))):
                ok = R.fail(what + ": manifest blobs exist", layer["digest"])
    return ok


def big_gguf(path, n_floats):
    w = G.GGUFWriter()
    w.add_str("general.architecture", "qwen2")
    w.add_str("general.name", "big")
    rng = np.random.default_rng(7)
    w.add_tensor_raw("pad.weight", "F32", (n_floats // 1024, 1024),
                     rng.integers(0, 255, n_floats * 4, dtype=np.uint8).tobytes())
    w.write(path)


class Registry:
    def __init__(self, work):
        self.dir = os.path.join(work, "registry")
        os.makedirs(self.dir)
        self.port = free_port()
        cfg = os.path.join(work, "registry.yml")
        with open(cfg, "w") as fh:
            fh.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                     "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                     "http:\n  addr: 127.0.0.1:%d\n" % (self.dir, self.port))
        self.log = open(os.path.join(work, "registry.log"), "w")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=self.log, stderr=self.log)
        self.url = "http://127.0.0.1:%d" % self.port
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def blob_data(self, digest):
        hexd = digest.split(":")[1]
        return os.path.join(self.dir, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def load_manifest(root, host, name):
    model, _, tag = name.partition(":")
    with open(os.path.join(root, "manifests", host, "library", model, tag), "rb") as fh:
        return fh.read()


def model_layer(manifest_bytes):
    m = json.loads(manifest_bytes)
    return [l for l in m["layers"] if l["mediaType"] == "application/vnd.ollama.image.model"][0]


def lines_in_order(text, steps):
    lines = text.splitlines()
    pos = [lines.index(s) if s in lines else -1 for s in steps]
    return all(p >= 0 for p in pos) and pos == sorted(pos)


# ---------------------------------------------------------------------------------------------

def test_push_pull_run(reg, work):
    src = os.path.join(work, "src")
    host = "127.0.0.1:%d" % reg.port
    name = host + "/library/mini:q8"
    mf = os.path.join(work, "Modelfile.mini")
    with open(mf, "w") as fh:
        fh.write("FROM %s\nSYSTEM You are terse.\nPARAMETER temperature 0.2\n" % Q8)
    rc, _, err = seek(src, "create", name, "-f", mf)
    check(rc == 0, "create the model to push", err)
    rc, _, err = seek(src, "push", name, "--insecure")
    check(rc == 0 and lines_in_order(err, ["retrieving manifest", "pushing manifest", "success"]),
            "push to the registry", err)
    check(err.count("pushing ") >= 4 and "100%" in err, "push shows a line per layer", err)
    req = urllib.request.Request(reg.url + "/v2/library/mini/manifests/q8",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req) as r:
        remote = r.read()
        remote_digest = r.headers.get("Docker-Content-Digest")
    local = load_manifest(src, host, "mini:q8")
    check(remote == local, "the registry holds the manifest bytes seek wrote")
    rc, _, err = seek(src, "push", name, "--insecure")
    check(rc == 0 and "success" in err, "a second push (every blob exists) succeeds", err)

    dst = os.path.join(work, "pulled")
    rc, _, err = seek(dst, "pull", name, "--insecure")
    steps = ["pulling manifest", "verifying sha256 digest", "writing manifest", "success"]
    check(rc == 0 and lines_in_order(err, steps), "pull into an empty store, Ollama's status lines", err)
    layer = model_layer(local)
    check(("pulling %s: 100%% " % layer["digest"][7:19]) in err, "a progress line per layer", err)
    check_store(dst, "pulled store")
    check(load_manifest(dst, host, "mini:q8") == local, "pulled manifest is byte-identical")
    check("sha256:" + sha256_file(os.path.join(dst, "manifests", host, "library", "mini", "q8")) == remote_digest,
            "model ID equals the registry's manifest digest")
    check(not [f for f in blob_files(dst) if f.startswith(".")], "no partial or temp files left",
            str(blob_files(dst)))
    rc, out, err = seek(dst, "list")
    check(rc == 0 and name in out, "list shows the pulled model", out + err)
    rc, out, err = seek(dst, "run", name, "Hello", "--num-predict", "5", timeout=120)
    check(rc == 0 and out.strip() != "", "seek run works from the pulled store", out + err)
    rc, _, err = seek(dst, "pull", name, "--insecure")
    check(rc == 0 and "success" in err, "pulling again (all blobs present) succeeds", err)

    if shutil.which("script"):
        tty = os.path.join(work, "tty")
        env = dict(os.environ, SEEK_MODELS=tty)
        cmd = "%s pull %s --insecure" % (SEEK, name)
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=env, timeout=120)
        text = p.stdout.decode("utf-8", "replace")
        check(p.returncode == 0 and "\x1b[2K" in text and "▕" in text and "█" in text and "success" in text,
              "on a terminal: bars redrawn in place", repr(text[-600:]))
    else:
        print("SKIP terminal bars: no script(1)")

    auto = os.path.join(work, "auto")
    rc, out, err = seek(auto, "run", name, "Hello", "--num-predict", "5", "--insecure", timeout=120)
    check(rc == 0 and "pulling manifest" in err and "success" in err and out.strip() != "",
            "seek run pulls a missing model first", out + err)
    check_store(auto, "run-pulled store")

    small = os.path.join(work, "small")
    os.makedirs(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", small], capture_output=True).returncode == 0:
        try:
            rc, _, err = seek(os.path.join(small, "store"), "pull", name, "--insecure")
            check(rc != 0 and "disk full" in err, "disk full: clear error before downloading", err)
            left = [f for _, _, fs in os.walk(small) for f in fs]
            check(not left, "disk full: nothing left behind", str(left))
        finally:
            subprocess.run(["umount", small])
    else:
        print("SKIP disk full: cannot mount a small tmpfs here")

    empty = os.path.join(work, "empty")
    rc, _, err = seek(empty, "pull", host + "/library/nosuchmodel:v1", "--insecure")
    check(rc != 0 and "not found" in err and "nosuchmodel" in err, "unknown model: clear not-found error", err)
    check(not manifest_files(empty), "unknown model: no manifest written")
    t0 = time.time()
    rc, _, err = seek(empty, "pull", name)
    check(rc != 0 and "Error:" in err and time.time() - t0 < 10,
          "https to a plain http registry (no --insecure) fails at once", err)
    rc, _, err = seek(empty, "push", host + "/library/notlocal:v1", "--insecure")
    check(rc != 0 and "not found" in err, "push of a model not in the store fails", err)
    return name, local


def test_resume(reg, proxy, work):
    host = "127.0.0.1:%d" % reg.port
    src = os.path.join(work, "src")
    big = os.path.join(work, "big.gguf")
    big_gguf(big, BIG_FLOATS)
    mf = os.path.join(work, "Modelfile.big")
    with open(mf, "w") as fh:
        fh.write("FROM %s\n" % big)
    name = host + "/library/big:f32"
    rc, _, err = seek(src, "create", name, "-f", mf)
    check(rc == 0, "create the big model", err)
    t0 = time.time()
    rc, _, err = seek(src, "push", name, "--insecure")
    check(rc == 0, "push the big model (%.1fs)" % (time.time() - t0), err)
    layer = model_layer(load_manifest(src, host, "big:f32"))
    digest, total = layer["digest"], layer["size"]

    pname = "127.0.0.1:%d/library/big:f32" % proxy.port
    dst = os.path.join(work, "resume")
    proxy.reset()
    proxy.limit = 48 << 20
    env = dict(os.environ, SEEK_MODELS=dst)
    p = subprocess.Popen([SEEK, "pull", pname, "--insecure"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not proxy.tripped and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(1.5)  # the state file is rewritten twice a second
    p.send_signal(signal.SIGKILL)
    p.wait()
    first = proxy.blob_bytes.get(digest, 0)
    check(proxy.tripped and 0 < first < total, "first pull cut after %d of %d bytes" % (first, total))
    check(not manifest_files(dst), "killed pull: no manifest")
    partial = os.path.join(dst, "blobs", ".seek-partial-sha256-" + digest[7:])
    check(os.path.exists(partial) and os.path.exists(partial + ".state"), "killed pull: partial data and state kept",
            str(blob_files(dst)))
    check(not os.path.exists(os.path.join(dst, "blobs", digest.replace(":", "-"))), "killed pull: blob not in store")
    rc, _, err = seek(dst, "rm", "nothing-here")  # any command; store cleanup must keep the partial
    seek(dst, "create", "x", "-f", "/nonexistent")
    check(os.path.exists(partial), "the partial survives other seek commands")

    proxy.reset()
    t0 = time.time()
    rc, _, err = seek(dst, "pull", pname, "--insecure", "--verbose")
    dt = time.time() - t0
    second = proxy.blob_bytes.get(digest, 0)
    print("resume: blob %d bytes; first pull %d bytes, second pull %d bytes (remaining %d), %+d" %
          (total, first, second, total - first, second - (total - first)))
    check(rc == 0 and "success" in err, "resumed pull succeeds (%.1fs)" % dt, err)
    check(abs(first + second - total) <= (1 << 20),
            "resume transfers only the remaining bytes (%d + %d vs %d)" % (first, second, total))
    check(proxy.ranged > 0, "the resumed pull used Range requests")
    check_store(dst, "resumed store")
    check(not [f for f in blob_files(dst) if f.startswith(".")], "no partial files after the resume",
            str(blob_files(dst)))

    # A byte flipped in the middle of the big blob on its way through (parallel parts).
    bad = os.path.join(work, "flip")
    proxy.reset()
    proxy.flip_at = total // 2 + 12345
    rc, _, err = seek(bad, "pull", pname, "--insecure")
    check(rc != 0 and "digest mismatch" in err and digest in err, "flipped byte: digest mismatch", err)
    check(not manifest_files(bad), "flipped byte: no manifest")
    check(not [f for f in blob_files(bad) if f.startswith("sha256-")], "flipped byte: no blob entered the store",
            str(blob_files(bad)))
    check(not os.path.exists(os.path.join(bad, "blobs", ".seek-partial-sha256-" + digest[7:])),
            "flipped byte: the bad download was deleted")
    proxy.reset()
    rc, _, err = seek(bad, "pull", pname, "--insecure")
    check(rc == 0, "the next pull after a mismatch succeeds", err)
    check_store(bad, "after mismatch")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.rmtree(dst, ignore_errors=True)


def test_corrupt_storage(reg, work, name, manifest):
    layer = model_layer(manifest)
    path = reg.blob_data(layer["digest"])
    with open(path, "r+b") as fh:
        fh.seek(1000)
        b = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([b[0] ^ 0x55]))
    try:
        dst = os.path.join(work, "corrupt")
        rc, _, err = seek(dst, "pull", name, "--insecure")
        check(rc != 0 and "digest mismatch" in err, "corrupted registry blob: digest mismatch", err)
        check(not manifest_files(dst), "corrupted registry blob: no manifest written")
        check(not [f for f in blob_files(dst) if f.startswith("sha256-")], "corrupted registry blob: store unchanged",
                str(blob_files(dst)))
    finally:
        with open(path, "r+b") as fh:
            fh.seek(1000)
            fh.write(b)


def test_proxy_behaviours(reg, proxy, work, manifest):
    pname = "127.0.0.1:%d/library/mini:q8" % proxy.port
    layer = model_layer(manifest)

    proxy.reset()
    proxy.auth = True
    proxy.redirect = True
    dst = os.path.join(work, "auth")
    rc, _, err = seek(dst, "pull", pname, "--insecure")
    check(rc == 0 and "success" in err, "bearer challenge: pull succeeds", err)
    check(proxy.n_401 >= 1 and proxy.n_token >= 1,
            "bearer challenge: 401 answered, token fetched (%d 401s, %d token requests)" % (proxy.n_401, proxy.n_token))
    check(proxy.n_storage >= 1 and proxy.storage_auth_leaks == 0,
            "redirect to blob storage followed without Authorization (%d requests, %d leaks)" %
            (proxy.n_storage, proxy.storage_auth_leaks))
    check_store(dst, "auth store")

    proxy.reset()
    proxy.fail_5xx = 3
    dst = os.path.join(work, "retry")
    t0 = time.time()
    rc, _, err = seek(dst, "pull", pname, "--insecure")
    check(rc == 0 and proxy.n_503 == 3, "503 three times, then success (%.1fs)" % (time.time() - t0), err)
    check_store(dst, "retry store")

    proxy.reset()
    proxy.strip_range = True
    dst = os.path.join(work, "norange")
    rc, _, err = seek(dst, "pull", pname, "--insecure", "--verbose")
    check(rc == 0 and "one stream" in err, "a server that ignores Range: one stream", err)
    check(proxy.blob_bytes.get(layer["digest"]) == layer["size"], "one stream: each byte sent once",
            str(proxy.blob_bytes))
    check_store(dst, "no-range store")

    proxy.reset()
    proxy.fail_5xx = 1000
    dst = os.path.join(work, "down")
    t0 = time.time()
    rc, _, err = seek(dst, "pull", pname, "--insecure")
    check(rc != 0 and "503" in err and "attempts" in err,
            "a registry that keeps failing: clear error after retries (%.1fs)" % (time.time() - t0), err)
    check(not manifest_files(dst), "failing registry: no manifest")
    proxy.reset()


def main():
    if not os.path.exists(REGISTRY_BIN):
        R.fail("docker-registry is installed", REGISTRY_BIN)
        R.finish()
    if not os.path.exists(SEEK):
        R.fail("seek binary exists", SEEK)
        R.finish()
    work = tempfile.mkdtemp(prefix="seek-registry-")
    reg = Registry(work)
    proxy = Proxy(reg.url)
    try:
        name, manifest = test_push_pull_run(reg, work)
        test_corrupt_storage(reg, work, name, manifest)
        test_proxy_behaviours(reg, proxy, work, manifest)
        test_resume(reg, proxy, work)
    finally:
        proxy.close()
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
