#!/usr/bin/env python3
"""test_templates.py - `seek template` against python3-jinja2 on the chat templates models ship.

For every template in shared/templates (plus a plain ChatML template) and a set of conversations
(system + user, user only, multi-turn with <think> reasoning, tool calls and tool results, a tools
list, unicode, text that looks like Jinja, whitespace at the edges, add_generation_prompt on and
off, BOS/EOS set or empty), the context is rendered twice:
  - by python3-jinja2 configured as Hugging Face transformers renders chat templates
    (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson as
    json.dumps(ensure_ascii=False), raise_exception and strftime_now as globals), and
  - by `seek template FILE.jinja` (SEEK_BIN, default ./seek) with the context on stdin.
The two outputs must be byte-identical, and a template that raises in Python must fail in seek.
Prints per-template counts; the last line is "test_templates: N passed, M failed".
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
from datetime import datetime

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")


def find_templates():
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.environ.get("SEEK_TEMPLATES", ""), os.path.join(here, "..", "..", "shared", "templates"),
             os.path.join(here, "..", "shared", "templates"), "/work/shared/templates"]
    for c in cands:
        if c and os.path.isdir(c) and any(f.endswith(".jinja") for f in os.listdir(c)):
            return c
    return None


def gguf_metadata(path):
    """The key/value metadata of a GGUF file (a minimal reader, independent of seek's)."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"GGUF":
        return {}
    n_kv = struct.unpack_from("<Q", data, 16)[0]
    pos = 24

    def read_str(pos):
        n = struct.unpack_from("<Q", data, pos)[0]
        return data[pos + 8:pos + 8 + n].decode("utf-8"), pos + 8 + n

    def read_val(t, pos):
        if t == 8:
            return read_str(pos)
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            out = []
            for _ in range(n):
                v, pos = read_val(et, pos)
                out.append(v)
            return out, pos
        return struct.unpack_from(fmts[t], data, pos)[0], pos + sizes[t]

    meta = {}
    for _ in range(n_kv):
        key, pos = read_str(pos)
        t = struct.unpack_from("<I", data, pos)[0]
        meta[key], pos = read_val(t, pos + 4)
    return meta


def find_gguf():
    here = os.path.dirname(os.path.abspath(__file__))
    for d in [os.environ.get("SEEK_FIXTURES", ""), os.path.join(here, "..", "..", "shared", "fixtures", "gguf"),
              os.path.join(here, "..", "shared", "fixtures", "gguf")]:
        p = os.path.join(d, "llama-mini-Q8_0.gguf") if d else ""
        if p and os.path.exists(p):
            return p
    return None


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — in °C",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
            "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
        }, "required": ["city"]},
        "return": {"type": "string"},
    }},
    {"type": "function", "function": {
        "name": "search", "description": "Search the web",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": []},
    }},
]


def tool_call(args, cid="call12345"):
    return {"id": cid, "type": "function", "function": {"name": "get_weather", "arguments": args}}


def conversations():
    sys_user = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is 2+2?"}]
    user_only = [{"role": "user", "content": "Hello there"}]
    multi = [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "Hi"},
             {"role": "assistant", "content": "<think>\nThe user greets me.\n</think>\n\nHello!",
              "thinking": "ignored"},
             {"role": "user", "content": "Tell me a joke"},
             {"role": "assistant", "content": "<think>joke time</think>Why did the chicken cross the road?"},
             {"role": "user", "content": "Why?"}]
    unicode = [{"role": "user", "content": "Grüße 👋 — 你好, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u00a0naïve\u2028x"},
               {"role": "assistant", "content": "こんにちは ✓"},
               {"role": "user", "content": "ç'est \"quoted\" \\ back\tslash"}]
    jinja_text = [{"role": "user", "content": "Render {{ x }} and {% if y %}z{% endif %} {# c #} literally"}]
    spaces = [{"role": "system", "content": "  padded system  \n"},
              {"role": "user", "content": "\n\n  lots of space\r\n\t "}]
    tool_dict = [{"role": "user", "content": "Weather in Paris?"},
                 {"role": "assistant", "content": None,
                  "tool_calls": [tool_call({"city": "Paris", "days": 2, "x": 1.5, "y": 1e-7, "z": [True, None]})]},
                 {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
                  "content": "{\"temp\": 21, \"unit\": \"°C\"}"},
                 {"role": "assistant", "content": "It is 21 °C."},
                 {"role": "user", "content": "Thanks"}]
    tool_str = [{"role": "user", "content": "Weather in Rome?"},
                {"role": "assistant", "content": None,
                 "tool_calls": [tool_call("{\"city\": \"Rome\"}", "abcdefghi")]},
                {"role": "tool", "tool_call_id": "abcdefghi", "content": "sunny"},
                {"role": "tool", "tool_call_id": "abcdefghi", "content": "25 degrees"}]
    tool_two = [{"role": "user", "content": "Two calls"},
                {"role": "assistant", "content": "",
                 "tool_calls": [tool_call("{\"city\": \"A\"}", "aaaaaaaaa"), tool_call("{\"city\": \"B\"}", "bbbbbbbbb")]},
                {"role": "tool", "tool_call_id": "aaaaaaaaa", "content": "1"},
                {"role": "tool", "tool_call_id": "bbbbbbbbb", "content": "2"}]
    bad_order = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    empty_sys = [{"role": "system", "content": ""}, {"role": "user", "content": "x"}]
    return [
        ("sys+user", sys_user, None),
        ("user", user_only, None),
        ("multi-turn-think", multi, None),
        ("unicode", unicode, None),
        ("jinja-text", jinja_text, None),
        ("spaces", spaces, None),
        ("tools-list", sys_user, TOOLS),
        ("tools-list-user", user_only, TOOLS),
        ("tool-call-dict-args", tool_dict, TOOLS),
        ("tool-call-str-args", tool_str, TOOLS),
        ("tool-call-no-tools", tool_str, None),
        ("two-tool-calls", tool_two, TOOLS),
        ("bad-alternation", bad_order, None),
        ("empty-system", empty_sys, None),
        ("no-messages", [], None),
    ]


def python_render(env, src, ctx):
    try:
        return env.from_string(src).render(**ctx), None
    except Exception as e:  # any template error: seek must fail too
        return None, "%s: %s" % (type(e).__name__, e)


def seek_render(seek, path, ctx):
    p = subprocess.run([seek, "template", path], input=json.dumps(ctx, ensure_ascii=False).encode("utf-8"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        return None, p.stderr.decode("utf-8", "replace").strip()
    return p.stdout.decode("utf-8"), None


def main():
    seek = os.environ.get("SEEK_BIN", "./seek")
    tdir = find_templates()
    n_pass = n_fail = 0
    if not os.access(seek, os.X_OK):
        print("FAIL: no seek binary at %s (set SEEK_BIN)" % seek)
        print("test_templates: 0 passed, 1 failed")
        return 1
    if not tdir:
        print("FAIL: shared/templates not found (set SEEK_TEMPLATES)")
        print("test_templates: 0 passed, 1 failed")
        return 1
    env = make_env()
    tmp = tempfile.mkdtemp(prefix="seek_tmpl_")
    chatml_path = os.path.join(tmp, "chatml.jinja")
    with open(chatml_path, "w", encoding="utf-8") as f:
        f.write(CHATML)
    templates = [(n, os.path.join(tdir, n)) for n in sorted(os.listdir(tdir)) if n.endswith(".jinja")]
    templates.append(("chatml", chatml_path))
    for name, path in templates:
        with open(path, encoding="utf-8", newline="") as f:
            src = f.read()
        t_pass = t_fail = t_raise = 0
        for conv_name, msgs, tools in conversations():
            for agp in (True, False):
                for bos, eos in (("<s>", "</s>"), ("", "")):
                    # chat_render drops "thinking"; the CLI passes the context as given, so do it here too
                    ctx = {"messages": [{k: v for k, v in m.items() if k != "thinking"} for m in msgs],
                           "add_generation_prompt": agp, "bos_token": bos, "eos_token": eos}
                    if tools is not None:
                        ctx["tools"] = tools
                    if "llama" in name.lower() and bos:
                        ctx["date_string"] = "26 Jan 2025"  # with bos empty, Llama 3.2 uses strftime_now
                    want, want_err = python_render(env, src, ctx)
                    got, got_err = seek_render(seek, path, ctx)
                    ok = (want_err is not None and got_err is not None) or (want_err is None and got == want)
                    # raise_exception("...") must reach the user with the template's own message
                    if ok and want_err and want_err.startswith("TemplateError: "):
                        ok = got_err.endswith(want_err[len("TemplateError: "):])
                    if ok:
                        t_pass += 1
                        t_raise += want_err is not None
                    else:
                        t_fail += 1
                        print("FAIL %s / %s agp=%s bos=%r" % (name, conv_name, agp, bos))
                        print("  python: %r" % (want if want_err is None else "ERROR " + want_err)[:3000])
                        print("  seek:   %r" % (got if got_err is None else "ERROR " + got_err)[:3000])
        print("%-48s %3d passed %3d failed (%d raise in both)" % (name, t_pass, t_fail, t_raise))
        n_pass += t_pass
        n_fail += t_fail
    os.remove(chatml_path)
    os.rmdir(tmp)

    # a .gguf: its tokenizer.chat_template, with BOS/EOS taken from its vocabulary when not given
    gguf_path = find_gguf()
    if gguf_path:
        meta = gguf_metadata(gguf_path)
        src = meta.get("tokenizer.chat_template")
        toks = meta.get("tokenizer.ggml.tokens", [])
        g_pass = g_fail = 0
        for conv_name, msgs, tools in conversations()[:6]:
            ctx = {"messages": [{k: v for k, v in m.items() if k != "thinking"} for m in msgs],
                   "add_generation_prompt": True}
            full = dict(ctx, bos_token=toks[meta["tokenizer.ggml.bos_token_id"]],
                        eos_token=toks[meta["tokenizer.ggml.eos_token_id"]])
            want, want_err = python_render(env, src, full)
            got, got_err = seek_render(seek, gguf_path, ctx)
            if (want_err and got_err) or (not want_err and got == want):
                g_pass += 1
            else:
                g_fail += 1
                print("FAIL gguf / %s\n  python: %r\n  seek:   %r" % (conv_name, want or want_err, got or got_err))
        print("%-48s %3d passed %3d failed" % (os.path.basename(gguf_path), g_pass, g_fail))
        n_pass += g_pass
        n_fail += g_fail
    else:
        print("note: no llama-mini-Q8_0.gguf fixture; the .gguf path is not tested")
    print("test_templates: %d passed, %d failed" % (n_pass, n_fail))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
