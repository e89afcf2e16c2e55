#!/usr/bin/env bash
# demo.sh - the first-run tour that `make demo` gives (after installing packages and building).
#
# There is no internet access here, so no real DeepSeek-R1 weights can be downloaded.  The demo
# makes a small DeepSeek-R1-Distill-Qwen-shaped checkpoint with random weights but the real R1
# tokenizer and chat template (scripts/make_demo_model.py), and then does what a user would do
# with a downloaded model: `seek create` from the Hugging Face folder (convert + quantize into the
# store), `seek fit`, one reasoning chat through `seek run`, and one through the HTTP API of
# `seek serve`.  The model's words are noise; the thinking/answer split, the thinking budget,
# streaming and the APIs are the real ones.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "No internet here: making a random-weight DeepSeek-R1-Distill-Qwen-shaped checkpoint with the real R1 tokenizer"
$PY scripts/make_demo_model.py "$work/deepseek-r1-demo-hf"
cat >"$work/Modelfile" <<'MODELFILE'
# a DeepSeek-R1 distill in Hugging Face format, converted and quantized by seek
FROM ./deepseek-r1-demo-hf
PARAMETER num_ctx 4096
MODELFILE

say "seek create deepseek-r1-demo -f Modelfile --quantize Q4_K_M   (store: ${SEEK_MODELS:-~/.seek/models})"
./seek create deepseek-r1-demo -f "$work/Modelfile" --quantize Q4_K_M
./seek list

say "seek fit: which real DeepSeek-R1 model this machine can run"
./seek fit

say "seek run deepseek-r1-demo \"Why is the sky blue?\" --think-budget 24"
./seek run deepseek-r1-demo "Why is the sky blue?" --think-budget 24 --num-predict 64 --seed 1 --verbose

say "seek serve, then POST /api/chat (the Ollama API) and /v1/chat/completions (the OpenAI API)"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SEEK_HOST=127.0.0.1:$port ./seek serve >"$work/serve.log" 2>&1 &
server=$!
$PY - "$port" <<'PYEOF'
import json, sys, time, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/api/version", timeout=1).read()
        break
    except OSError:
        time.sleep(0.1)

def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=120).read())

q = [{"role": "user", "content": "What is 2 + 2?"}]
r = post("/api/chat", {"model": "deepseek-r1-demo", "messages": q, "stream": False,
                        "options": {"num_predict": 48, "seed": 1, "think_budget": 16}})
print("POST /api/chat ->")
print("  message.thinking:", json.dumps(r["message"].get("thinking", ""))[:300])
print("  message.content: ", json.dumps(r["message"]["content"])[:300])
print("  eval_count %d, eval_duration %.1f ms, done_reason %s" % (r["eval_count"], r["eval_duration"] / 1e6, r["done_reason"]))
r = post("/v1/chat/completions", {"model": "deepseek-r1-demo", "messages": q, "max_tokens": 48, "seed": 1})
m = r["choices"][0]["message"]
print("POST /v1/chat/completions ->")
print("  reasoning_content:", json.dumps(m.get("reasoning_content", ""))[:300])
print("  content:          ", json.dumps(m["content"])[:300])
print("  usage:", r["usage"])
PYEOF
say "done: the model stays in the store (seek rm deepseek-r1-demo removes it)"
