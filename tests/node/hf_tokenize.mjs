// hf_tokenize.mjs - reference token ids from @huggingface/tokenizers (tokenizers.js), for
// tests/test_tokenizer.py.
//
// usage: node hf_tokenize.mjs TOKENIZER_DIR IN.json OUT.json
//   IN.json:  {"cases": [{"text": "...", "special": true|false}, ...]}
//   OUT.json: [[ids of case 0], [ids of case 1], ...]
//
// HF always splits every added token out of the text.  seek does that for special ones only
// when asked (parse_special); for "special": false cases this script therefore uses a second
// tokenizer whose added tokens marked special are removed, so their text is plain text, while
// non-special added tokens (user-defined in GGUF terms, e.g. Qwen3's <think>) still split.
// No BOS/EOS is added (add_special_tokens: false); seek's --bos is tested separately.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, inPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: node hf_tokenize.mjs TOKENIZER_DIR IN.json OUT.json");
    process.exit(2);
}
const tokJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const tokConfig = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));

const full = new Tokenizer(tokJson, tokConfig);
const plainJson = structuredClone(tokJson);
plainJson.added_tokens = plainJson.added_tokens.filter((t) => !t.special);
const plain = new Tokenizer(plainJson, { ...tokConfig, additional_special_tokens: [] });

const { cases } = JSON.parse(readFileSync(inPath, "utf8"));
const out = cases.map((c) => (c.special ? full : plain).encode(c.text, { add_special_tokens: false }).ids);
writeFileSync(outPath, JSON.stringify(out));
