"""
harness.py - shared plumbing of the Python tests: PASS/FAIL reporting, locating and running the
seek binary (`seek logits`, `seek quantize`), and the fixtures directory.

Conventions (tests/run.sh parses them): one line per check "PASS name ..." or "FAIL name ...",
and as the last line "PROGRAM: N passed, M failed"; exit status 1 when anything failed.
"""

import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Reporter:
    """Counts checks.  check(ok, name, detail) prints one line; finish() prints the summary line
    and exits."""

    def __init__(self, program):
        self.program = program
        self.passed = 0
        self.failed = 0
        self.t0 = time.time()

    def check(self, ok, name, detail=""):
        ok = bool(ok)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, (" " + detail) if detail else ""), flush=True)
        return ok

    def fail(self, name, detail=""):
        return self.check(False, name, detail)

    def finish(self):
        print("(%.1fs)" % (time.time() - self.t0))
        print("%s: %d passed, %d failed" % (self.program, self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


def seek_bin():
    """Path of the seek binary: $SEEK_BIN, else ./seek, else build/seek (relative to the repo);
    None when none exists."""
    env = os.environ.get("SEEK_BIN")
    if env:
        return env if os.path.exists(env) else None
    for p in (os.path.join(REPO, "seek"), os.path.join(REPO, "build", "seek")):
        if os.path.exists(p):
            return p
    return None


def fixtures_dir():
    """$SEEK_FIXTURES, else ../shared/fixtures/gguf next to the repo."""
    env = os.environ.get("SEEK_FIXTURES")
    if env:
        return env
    return os.path.join(os.path.dirname(REPO), "shared", "fixtures", "gguf")


class SeekError(Exception):
    pass


def _run(args, timeout, env=None):
    try:
        r = subprocess.run(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        raise SeekError("timed out after %ds: %s" % (timeout, " ".join(args)))
    except OSError as e:
        raise SeekError("cannot run %s: %s" % (args[0], e))
    if r.returncode != 0:
        err = (r.stderr or r.stdout).decode("utf-8", "replace").strip().splitlines()
        raise SeekError("exit %d: %s" % (r.returncode, err[-1] if err else "(no output)"))
    return r


def seek_logits(model_path, tokens, out_path, n_vocab, timeout=120, env=None):
    """Runs `seek logits` and returns float32 logits (len(tokens), n_vocab); env replaces the
    environment when given."""
    binary = seek_bin()
    if binary is None:
        raise SeekError("no seek binary (build it with make, or set SEEK_BIN)")
    if os.path.exists(out_path):
        os.remove(out_path)
    _run([binary, "logits", model_path, "--tokens", " ".join(str(t) for t in tokens), "--out", out_path],
         timeout, env)
    data = np.fromfile(out_path, dtype="<f4")
    if data.size != len(tokens) * n_vocab:
        raise SeekError("%s: %d floats, expected %d x %d" % (out_path, data.size, len(tokens), n_vocab))
    return data.reshape(len(tokens), n_vocab)


def seek_quantize(in_path, out_path, type_name, timeout=120):
    binary = seek_bin()
    if binary is None:
        raise SeekError("no seek binary (build it with make, or set SEEK_BIN)")
    _run([binary, "quantize", in_path, out_path, type_name], timeout)
