"""test_run.py - `seek run` end to end: one-shot answers (thinking block, --think=false,
--hidethinking, --think-budget, --verbose statistics, stop strings, stdin prompts, seeds) and the
interactive REPL driven through tmux (/set, /show, multi-line input, Ctrl+C stopping an answer,
/bye, the history file).

The model is the llama.cpp-made fixture qwen2-mini-Q8_0.gguf: random weights, but a real byte-level
BPE vocabulary with the DeepSeek-R1 special tokens and the R1 chat template, so the prompt opens a
thought exactly as a real R1 distill's does.  What the model says is noise; the tests check how
seek frames, streams, limits and stops it.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEK = os.environ.get("SEEK_BIN", os.path.join(ROOT, "build", "seek"))
FIX = os.environ.get("SEEK_FIXTURES", os.path.join(ROOT, "..", "shared", "fixtures", "gguf"))
MODEL = os.path.join(FIX, "qwen2-mini-Q8_0.gguf")
LLAMA = os.path.join(FIX, "llama-mini-Q8_0.gguf")

passed = 0
failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, detail[:2000] if detail else "")


def run(args, stdin=None, env=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([SEEK, "run"] + args, input=stdin, capture_output=True, text=True,
                       timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def split_thinking(out):
    """Returns (thinking, answer) from the plain-text framing, or (None, out) without a block."""
    if not out.startswith("Thinking...\n"):
        return None, out
    body = out[len("Thinking...\n"):]
    end = body.find("\n...done thinking.\n\n")
    if end < 0:
        return body, ""
    return body[:end], body[end + len("\n...done thinking.\n\n"):]


def test_oneshot():
    rc, out, err = run([MODEL, "Why is the sky blue?", "--num-predict", "24", "--temperature", "0"])
    check(rc == 0, "one-shot exit status", err)
    check(out.startswith("Thinking...\n"), "R1 prompt opens a thought: output starts with Thinking...", out)
    check("\x1b[" not in out, "no terminal escapes when piped", repr(out[:200]))
    rc2, out2, _ = run([MODEL, "Why is the sky blue?", "--num-predict", "24", "--temperature", "0"])
    check(rc2 == 0 and out2 == out, "greedy output is deterministic", out + "\n---\n" + out2)

    rc, out_h, err = run([MODEL, "Why is the sky blue?", "--num-predict", "24", "--temperature", "0",
                          "--hidethinking"])
    check(rc == 0 and "Thinking..." not in out_h, "--hidethinking hides the thought", out_h)
    thinking, answer = split_thinking(out)
    check(out_h.strip() == answer.strip(), "--hidethinking keeps the answer", repr(out_h) + " vs " + repr(answer))

    rc, out_n, err = run([MODEL, "Why is the sky blue?", "--num-predict", "24", "--temperature", "0",
                          "--think=false"])
    check(rc == 0 and not out_n.startswith("Thinking..."), "--think=false: no thinking block", out_n)
    check(len(out_n.strip()) > 0, "--think=false still answers", repr(out_n))


def test_seed():
    base = [MODEL, "Tell me a story", "--num-predict", "20", "--temperature", "1.0"]
    _, a, _ = run(base + ["--seed", "7"])
    _, b, _ = run(base + ["--seed", "7"])
    _, c, _ = run(base + ["--seed", "8"])
    check(a == b, "same seed, same output", a + "\n---\n" + b)
    check(a != c, "different seed, different output", a)


def test_stdin_prompt():
    rc, out, err = run([MODEL, "--num-predict", "8", "--temperature", "0"], stdin="Hello from stdin\n")
    check(rc == 0 and out.startswith("Thinking..."), "prompt from piped stdin", out + err)
    rc, out2, err = run([MODEL, "Hello from stdin\n", "--num-predict", "8", "--temperature", "0"], stdin="")
    check(rc == 0 and out2 == out, "stdin prompt equals the same argument prompt", out + "\n---\n" + out2)


def test_verbose():
    rc, out, err = run([MODEL, "hi", "--num-predict", "12", "--temperature", "0", "--verbose"])
    names = ["total duration", "load duration", "prompt eval count", "prompt eval duration",
             "prompt eval rate", "eval count", "eval duration", "eval rate"]
    for n in names:
        check(re.search(r"^" + n + r":\s+\S", err, re.M) is not None, "--verbose prints '%s'" % n, err)
    m = re.search(r"^eval count:\s+(\d+) token\(s\)", err, re.M)
    n_eval = int(m.group(1)) if m else -1
    check(1 <= n_eval <= 12, "eval count bounded by num_predict", err)
    m = re.search(r"^prompt eval count:\s+(\d+) token\(s\)", err, re.M)
    # BOS <|User|> h i <|Assistant|> <think> \n : at least 6 tokens for "hi" in this vocabulary
    check(m is not None and int(m.group(1)) >= 6, "prompt eval count counts the rendered prompt", err)
    check(re.search(r"^total duration:\s+[0-9.]+(ms|s|µs)$", err, re.M) is not None,
          "durations in Go's format", err)


def test_think_budget():
    budget = 6
    rc, out, err = run([MODEL, "Solve 2+2", "--num-predict", "40", "--temperature", "0",
                        "--think-budget", str(budget), "--verbose"])
    thinking, answer = split_thinking(out)
    check(rc == 0 and thinking is not None, "budget run starts thinking", out)
    check("...done thinking." in out, "the budget closes the thought", out)
    check(thinking is not None and "time to give the answer" in thinking, "the bridge text ends the thought",
          repr(thinking))
    m = re.search(r"^eval count:\s+(\d+)", err, re.M)
    check(m is not None and int(m.group(1)) > budget, "generation continues after the budget", err)
    # the unbudgeted greedy thought starts with the same tokens
    rc, out_full, _ = run([MODEL, "Solve 2+2", "--num-predict", str(budget), "--temperature", "0"])
    t_full, _ = split_thinking(out_full)
    bridge_at = thinking.find("\n\nI have thought") if thinking else -1
    check(t_full is not None and bridge_at >= 0 and t_full.rstrip("\n").startswith(thinking[:bridge_at].rstrip("\n")),
          "the budgeted thought is the unbudgeted one cut short", repr(thinking) + " vs " + repr(t_full))


def test_stop():
    args = [MODEL, "Say something", "--num-predict", "40", "--temperature", "0", "--think=false"]
    rc, out, _ = run(args)
    text = out.strip("\n")
    # choose a stop string from the middle of the answer
    mid = len(text) // 2
    stop = text[mid:mid + 3]
    if len(stop.strip()) < 2:
        stop = text[mid:mid + 5]
    rc, out2, err = run(args + ["--stop", stop])
    expect = text[:text.find(stop)]
    check(rc == 0 and out2.rstrip("\n") == expect.rstrip("\n"), "stop string cuts the answer before it",
          "stop=%r\nfull=%r\ngot=%r" % (stop, text, out2))


def test_errors():
    rc, out, err = run(["no-such-model:7b", "hi"])
    check(rc == 1 and "not found" in err, "unknown model: clear error", err)
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(b"GGUF\x03\x00\x00\x00garbage")
        f.flush()
        rc, out, err = run([f.name, "hi"])
        check(rc == 1 and "Error:" in err, "corrupt model file: clear error", err)
    rc, out, err = run([MODEL, "hi", "--temperature", "abc"])
    check(rc == 2 and "temperature" in err, "bad parameter value is rejected", err)
    rc, out, err = run([MODEL, "hi", "--ctx", "65536"], env={"SEEK_MEM_LIMIT": "100MB"})
    check(rc == 1 and "needs" in err and "GB of memory" in err and "available" in err,
          "a model that cannot fit is refused with the memory it needs", err)
    rc, out, err = run([MODEL, "hi", "--num-predict", "2"], env={"SEEK_MEM_LIMIT": "4GB"})
    check(rc == 0, "the same model runs within a budget it fits", err)
    rc, out, err = run([MODEL, "hi " * 3000, "--ctx", "64", "--num-predict", "4"])
    check(rc == 1 and "context" in err, "a prompt longer than the context is an error", err)


def test_llama_model():
    rc, out, err = run([LLAMA, "hello", "--num-predict", "10", "--temperature", "0"])
    check(rc == 0 and out.startswith("Thinking..."), "llama architecture R1 model runs", out + err)


# ---- REPL through tmux ----------------------------------------------------------------------

class Tmux:
    def __init__(self, cmd, home):
        self.name = "seektest%d" % os.getpid()
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)
        env = "HOME=%s TERM=xterm-256color" % home
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "50",
                        "env %s %s; sleep 30" % (env, cmd)], check=True)

    def screen(self):
        p = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-2000", "-t", self.name],
                           capture_output=True, text=True)
        return p.stdout

    def send(self, text, enter=True):
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text])
        if enter:
            subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"])

    def key(self, k):
        subprocess.run(["tmux", "send-keys", "-t", self.name, k])

    def wait(self, pred, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            s = self.screen()
            if pred(s):
                return True, s
            time.sleep(0.1)
        return False, self.screen()

    def prompts(self, s):
        return len(re.findall(r"^>>> ", s, re.M))

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_repl():
    if not shutil.which("tmux"):
        check(False, "tmux is installed (scripts/install-deps.sh test)")
        return
    home = tempfile.mkdtemp()
    t = Tmux("%s run %s --num-predict 16" % (SEEK, MODEL), home)
    try:
        ok, s = t.wait(lambda s: t.prompts(s) >= 1)
        check(ok, "REPL shows the >>> prompt", s)

        def command(text, expect, what):
            n = t.prompts(t.screen())
            t.send(text)
            ok, s = t.wait(lambda s: t.prompts(s) > n and expect in s)
            check(ok, what, s[-1500:])

        command("/set parameter temperature 0", "Set parameter 'temperature' to '0'", "/set parameter")
        command("/show parameters", "User defined parameters", "/show parameters lists user settings")
        check(re.search(r"^temperature\s+0$", t.screen(), re.M) is not None, "/show parameters value", t.screen())
        command("/show info", "architecture", "/show info")
        check("qwen2" in t.screen(), "/show info names the architecture", t.screen())
        command("/show template", "<｜Assistant｜>", "/show template prints the chat template")
        command("/set system You are terse.", "Set system message.", "/set system")
        command("/show system", "You are terse.", "/show system")
        command("/?", "/bye", "/? lists commands")
        command("/nonsense", "Unknown command", "unknown /command")

        n = t.prompts(t.screen())
        t.send("What is 1+1?")
        ok, s = t.wait(lambda s: t.prompts(s) > n and "...done thinking." in s or t.prompts(s) > n + 0 and s.rstrip().endswith(">>>"))
        check(ok and "Thinking..." in s, "an answer streams with a thinking block", s[-1500:])

        # multi-line input
        n = t.prompts(t.screen())
        t.send('"""first line')
        t.wait(lambda s: "... " in s.splitlines()[-1] if s.splitlines() else False, 5)
        t.send('second line"""')
        ok, s = t.wait(lambda s: t.prompts(s) > n)
        check(ok and s.count("Thinking...") >= 2, 'multi-line """ input is sent as one message', s[-1500:])

        command("/set nothink", "Set 'nothink' mode.", "/set nothink")
        n = t.prompts(t.screen())
        before = t.screen().count("Thinking...")
        t.send("Answer without thinking")
        ok, s = t.wait(lambda s: t.prompts(s) > n)
        check(ok and s.count("Thinking...") == before, "nothink: no thinking block", s[-1500:])
        command("/set think", "Set 'think' mode.", "/set think")

        # Ctrl+C stops a long answer but not the REPL
        command("/set parameter num_predict 100000", "num_predict", "/set parameter num_predict")
        command("/clear", "Cleared session context", "/clear")
        n = t.prompts(t.screen())
        t.send("Write a very long essay")
        ok, s = t.wait(lambda s: s.count("Thinking...") > before + 2 or "Thinking..." in s.split(">>> Write a very long essay")[-1], 20)
        time.sleep(1.0)
        t.key("C-c")
        ok, s = t.wait(lambda s: t.prompts(s) > n, 20)
        check(ok, "Ctrl+C stops the answer and returns to the prompt", s[-1500:])
        command("/show system", "You are terse.", "the REPL still works after Ctrl+C")

        t.send("/bye")
        ok, s = t.wait(lambda s: not re.search(r">>> $", s.rstrip("\n").splitlines()[-1] if s.strip() else ""), 10)
        time.sleep(0.5)
        hist = os.path.join(home, ".seek", "history")
        # libedit stores lines vis(3)-encoded: a space is written as \040
        text = open(hist, encoding="utf-8", errors="replace").read() if os.path.exists(hist) else ""
        check("/show info" in text.replace("\\040", " "), "history file records the lines", text)
    finally:
        t.close()
        shutil.rmtree(home, ignore_errors=True)


def main():
    if not os.path.exists(MODEL):
        print("missing fixture", MODEL)
        print("test_run: 0 passed, 1 failed")
        return 1
    for fn in [test_oneshot, test_seed, test_stdin_prompt, test_verbose, test_think_budget, test_stop,
               test_errors, test_llama_model, test_repl]:
        try:
            fn()
        except Exception as e:  # a crash in one group is a failure, the others still run
            check(False, fn.__name__ + " raised", repr(e))
    print("test_run: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
