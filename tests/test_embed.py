#!/usr/bin/python3
"""
test_embed.py - embeddings (sched_embed: mean over the tokens of the final hidden states,
L2-normalised) against the independent float64 numpy forward pass of tests/ref/model_np.py.

For the qwen2 and llama Q8_0 fixtures and a few texts, tests/tool_embed prints seek's token ids
and embedding; numpy computes hidden_states over the same ids from the file's dequantized
weights, averages, normalises, and compares:
  dim       the embedding has D = embedding_length values;
  norm      its L2 norm is 1 within 1e-5;
  match     cosine similarity with numpy's >= 0.999 and max |diff| <= 0.02 (seek quantizes
            activations to 8 bits inside the quantized matmuls, as llama.cpp does, which moves
            hidden states by about 1e-3 relative; a wrong norm, pooling or position would give
            cosines far below 0.99);
  distinct  different texts give clearly different embeddings (cosine < 0.99 on random weights).

Environment: SEEK_TOOL_EMBED (default build/tests/tool_embed), SEEK_FIXTURES.
Last line: "test_embed: N passed, M failed".
"""

import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))
import model_np as M  # noqa: E402
from gguf_py import GGUFFile  # noqa: E402
from harness import REPO, Reporter, fixtures_dir  # noqa: E402

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello", "¿Dónde está la biblioteca? 図書館"]


def run_tool(tool, model, texts):
    r = subprocess.run([tool, model] + texts, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode("utf-8", "replace").strip())
    lines = r.stdout.decode().splitlines()
    out = []
    for i in range(0, len(lines), 2):
        ids = [int(x) for x in lines[i].split()[2:]]
        emb = np.array([float(x) for x in lines[i + 1].split()[2:]], dtype=np.float64)
        out.append((ids, emb))
    return out


def main():
    rep = Reporter("test_embed")
    tool = os.environ.get("SEEK_TOOL_EMBED", os.path.join(REPO, "build", "tests", "tool_embed"))
    if not os.path.exists(tool):
        rep.fail("tool", "%s not built" % tool)
        rep.finish()
    for name in ("qwen2-mini-Q8_0.gguf", "llama-mini-Q8_0.gguf"):
        path = os.path.join(fixtures_dir(), name)
        try:
            got = run_tool(tool, path, TEXTS)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            rep.fail(name, str(e))
            continue
        cfg, w = M.load_gguf(GGUFFile(path))
        embs = []
        for text, (ids, emb) in zip(TEXTS, got):
            label = "%s %r" % (name, text[:12])
            rep.check(len(emb) == cfg.dim, "dim " + label, "%d vs %d" % (len(emb), cfg.dim))
            rep.check(abs(np.linalg.norm(emb) - 1) < 1e-5, "norm " + label, "%.8f" % np.linalg.norm(emb))
            ref = M.hidden_states(cfg, w, ids).mean(axis=0)
            ref /= np.linalg.norm(ref)
            cos = float(np.dot(ref, emb))
            md = float(np.abs(ref - emb).max()) if len(emb) == len(ref) else float("inf")
            rep.check(cos >= 0.999 and md <= 0.02, "match " + label, "cosine %.6f, max |diff| %.2e, %d tokens"
                      % (cos, md, len(ids)))
            embs.append(emb)
        if len(embs) == len(TEXTS):
            c01 = float(np.dot(embs[0], embs[1]))
            rep.check(c01 < 0.99, "distinct " + name, "cosine of two texts %.4f" % c01)
    rep.finish()


if __name__ == "__main__":
    main()
