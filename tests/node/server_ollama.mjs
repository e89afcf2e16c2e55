// server_ollama.mjs - drives `seek serve` with the official `ollama` npm client (tests/test_server.py
// starts the server and runs this).  Prints one "PASS name" / "FAIL name detail" line per check and
// a last line "RESULT {json}" with outputs the Python side compares across APIs.
//
// usage: node server_ollama.mjs HOST MODEL OTHER_MODEL FIXTURE_GGUF FAKE_REGISTRY_HOSTPORT
import { Ollama } from 'ollama';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [host, model, other, fixture, fakeRegistry] = process.argv.slice(2);
const ollama = new Ollama({ host });
let failed = 0;
const result = {};

function check(ok, name, detail = '') {
  if (!ok) failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ollama.${name}${detail ? ' ' + detail : ''}`);
  return ok;
}

async function expectError(name, fn, status) {
  try {
    await fn();
    check(false, name, 'no error thrown');
  } catch (e) {
    const got = e.status_code;
    check(e.name === 'ResponseError' && got === status && typeof e.error === 'string' && e.error.length > 0,
      name, `(${e.name} ${got}: ${e.error ?? e.message})`);
  }
}

async function collect(stream, field) {
  let thinking = '', content = '', last = null, n = 0;
  for await (const part of stream) {
    n++;
    const src = field === 'message' ? part.message : part;
    if (field === 'message') {
      thinking += src.thinking ?? '';
      content += src.content ?? '';
    } else {
      thinking += part.thinking ?? '';
      content += part.response ?? '';
    }
    last = part;
  }
  return { thinking, content, last, n };
}

const greedy = { temperature: 0, seed: 42, num_predict: 24 };
const isoNano = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

async function main() {
  // ---- version, list, show
  const v = await ollama.version();
  check(typeof v.version === 'string' && v.version.length > 0, 'version', v.version);
  const list = await ollama.list();
  const names = list.models.map((m) => m.name);
  check(names.includes(`${model}:latest`) && names.includes(`${other}:latest`), 'list.names', names.join(','));
  const m0 = list.models.find((m) => m.name === `${model}:latest`);
  check(m0 && m0.details.format === 'gguf' && m0.details.family === 'qwen2' && m0.details.quantization_level === 'Q8_0' &&
    /^[0-9a-f]{64}$/.test(m0.digest) && m0.size > 1e6 && isoNano.test(m0.modified_at), 'list.fields', JSON.stringify(m0));

  const show = await ollama.show({ model });
  check(show.capabilities.includes('completion') && show.capabilities.includes('thinking'), 'show.capabilities',
    JSON.stringify(show.capabilities));
  check(show.model_info['general.architecture'] === 'qwen2' && show.model_info['qwen2.block_count'] === 2 &&
    show.model_info['tokenizer.ggml.tokens'] === null, 'show.model_info');
  check(show.details.family === 'qwen2' && show.details.quantization_level === 'Q8_0', 'show.details');
  check(show.template.includes('<think>') && show.modelfile.includes('FROM ') && show.parameters.includes('temperature'),
    'show.template_modelfile_parameters', JSON.stringify(show.parameters));
  await expectError('show.unknown_404', () => ollama.show({ model: 'no-such-model' }), 404);

  // ---- generate: stream and not, greedy, thinking separated
  const gen = await ollama.generate({ model, prompt: 'Why is the sky blue?', options: greedy });
  check(gen.done === true && ['stop', 'length'].includes(gen.done_reason) && gen.eval_count > 0 &&
    gen.prompt_eval_count > 0 && gen.total_duration > 0 && gen.eval_duration > 0 && isoNano.test(gen.created_at) &&
    gen.model === model, 'generate.fields', JSON.stringify({ ...gen, response: undefined, thinking: undefined }));
  check(typeof gen.thinking === 'string' && gen.thinking.length > 0, 'generate.thinking_separate');
  const genS = await collect(await ollama.generate({ model, prompt: 'Why is the sky blue?', options: greedy, stream: true }), 'response');
  check(genS.thinking === (gen.thinking ?? '') && genS.content === gen.response && genS.n > 2, 'generate.stream_equals_nonstream',
    JSON.stringify([genS.thinking.slice(0, 40), (gen.thinking ?? '').slice(0, 40)]));
  check(genS.last.done === true && genS.last.eval_count === gen.eval_count, 'generate.stream_final');

  const noThink = await ollama.generate({ model, prompt: 'Why is the sky blue?', options: greedy, think: false });
  check(!noThink.thinking && noThink.response.length > 0, 'generate.think_false', JSON.stringify(noThink.response.slice(0, 40)));
  const yesThink = await ollama.generate({ model, prompt: 'Why is the sky blue?', options: greedy, think: true });
  check(yesThink.thinking && yesThink.thinking.length > 0, 'generate.think_true');

  // ---- options: num_predict, stop (picked from the greedy answer itself)
  const short = await ollama.generate({ model, prompt: 'Count', options: { ...greedy, num_predict: 3 }, think: false });
  check(short.eval_count === 3 && short.done_reason === 'length', 'options.num_predict', `${short.eval_count} ${short.done_reason}`);
  const text = noThink.response;
  const cut = Math.max(1, Math.floor(text.length / 2));
  const stopStr = text.slice(cut, cut + 3);
  if (stopStr.trim().length > 0) {
    const stopped = await ollama.generate({ model, prompt: 'Why is the sky blue?', options: { ...greedy, stop: [stopStr] }, think: false });
    check(stopped.response === text.slice(0, text.indexOf(stopStr)) && stopped.done_reason === 'stop', 'options.stop',
      JSON.stringify([stopStr, stopped.response]));
  }
  const ignored = await ollama.generate({ model, prompt: 'Hi', options: { ...greedy, num_predict: 2, definitely_unknown: 1, num_gpu: 3 } });
  check(ignored.done === true, 'options.unknown_ignored');
  await expectError('options.wrong_type_400', () => ollama.generate({ model, prompt: 'Hi', options: { temperature: 'hot' } }), 400);
  const budget = await ollama.generate({ model, prompt: 'Think', options: { ...greedy, num_predict: 30, think_budget: 5 }, think: true });
  check(budget.done === true && budget.thinking && budget.response.length > 0, 'options.think_budget',
    JSON.stringify([budget.thinking, budget.response.slice(0, 30)]));

  // ---- chat: stream and not
  const messages = [{ role: 'user', content: 'Tell me a joke.' }];
  const chat = await ollama.chat({ model, messages, options: greedy });
  check(chat.message.role === 'assistant' && chat.done && chat.eval_count > 0 && typeof chat.message.thinking === 'string',
    'chat.fields');
  const chatS = await collect(await ollama.chat({ model, messages, options: greedy, stream: true }), 'message');
  check(chatS.thinking === (chat.message.thinking ?? '') && chatS.content === chat.message.content, 'chat.stream_equals_nonstream');
  const chatNo = await ollama.chat({ model, messages, options: greedy, think: false });
  check(!chatNo.message.thinking && chatNo.message.content.length > 0, 'chat.think_false');
  result.chat = { thinking: chat.message.thinking ?? '', content: chat.message.content, eval_count: chat.eval_count,
    prompt_eval_count: chat.prompt_eval_count };
  result.chat_nothink = { content: chatNo.message.content };
  await expectError('chat.unknown_model_404', () => ollama.chat({ model: 'nope:latest', messages }), 404);
  await expectError('chat.bad_messages_400', () => ollama.chat({ model, messages: 'hi' }), 400);

  // ---- keep_alive: load, ps, unload
  const load = await ollama.generate({ model: other, prompt: '', keep_alive: '10m' });
  check(load.done && load.done_reason === 'load', 'keep_alive.load', load.done_reason);
  let ps = await ollama.ps();
  const entry = ps.models.find((m) => m.name.startsWith(other));
  const exp = entry ? (new Date(entry.expires_at) - Date.now()) / 1000 : -1;
  check(entry && exp > 540 && exp < 660 && entry.size > 0 && entry.details.family === 'llama', 'ps.loaded_expires',
    JSON.stringify(entry));
  const unload = await ollama.generate({ model: other, prompt: '', keep_alive: 0 });
  check(unload.done_reason === 'unload', 'keep_alive.unload', unload.done_reason);
  let gone = false;
  for (let i = 0; i < 40 && !gone; i++) {
    ps = await ollama.ps();
    gone = !ps.models.some((m) => m.name.startsWith(other));
    if (!gone) await new Promise((r) => setTimeout(r, 50));
  }
  check(gone, 'ps.unloaded');
  const forever = await ollama.chat({ model: other, messages: [], keep_alive: -1 });
  ps = await ollama.ps();
  const fe = ps.models.find((m) => m.name.startsWith(other));
  check(forever.done_reason === 'load' && fe && new Date(fe.expires_at).getFullYear() > 2200, 'keep_alive.forever',
    fe && fe.expires_at);
  await ollama.generate({ model: other, prompt: '', keep_alive: 0 });
  await expectError('keep_alive.bad_400', () => ollama.generate({ model, prompt: 'x', keep_alive: 'soon' }), 400);

  // ---- embeddings
  const emb = await ollama.embed({ model, input: ['hello world', 'the sky is blue'] });
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  check(emb.embeddings.length === 2 && emb.embeddings[0].length > 0 && Math.abs(norm(emb.embeddings[0]) - 1) < 1e-3 &&
    Math.abs(norm(emb.embeddings[1]) - 1) < 1e-3 && emb.prompt_eval_count > 0, 'embed.normalized',
    `dim ${emb.embeddings[0]?.length}`);
  const emb1 = await ollama.embed({ model, input: 'hello world' });
  check(emb1.embeddings.length === 1 && emb1.embeddings[0].every((x, i) => Math.abs(x - emb.embeddings[0][i]) < 1e-5),
    'embed.batch_equals_single');
  result.embedding = emb1.embeddings[0];
  const legacy = await ollama.embeddings({ model, prompt: 'hello world' });
  check(legacy.embedding.length === emb1.embeddings[0].length, 'embeddings.legacy');
  await expectError('embed.unknown_404', () => ollama.embed({ model: 'nope', input: 'x' }), 404);

  // ---- create / copy / delete
  const statuses = [];
  for await (const p of await ollama.create({ model: 'mine', from: model, system: 'You are terse.',
    parameters: { temperature: 0.25, stop: ['END', 'STOP'] }, stream: true })) statuses.push(p.status);
  check(statuses[statuses.length - 1] === 'success' && statuses.includes('writing manifest'), 'create.stream',
    statuses.join('|'));
  const mine = await ollama.show({ model: 'mine' });
  check(mine.system === 'You are terse.' && /temperature\s+0.25/.test(mine.parameters) && /stop\s+"END"/.test(mine.parameters),
    'create.show', JSON.stringify(mine.parameters));
  await ollama.copy({ source: 'mine', destination: 'mine-copy' });
  let after = (await ollama.list()).models.map((m) => m.name);
  check(after.includes('mine:latest') && after.includes('mine-copy:latest'), 'copy.listed');
  await ollama.delete({ model: 'mine-copy' });
  await ollama.delete({ model: 'mine' });
  after = (await ollama.list()).models.map((m) => m.name);
  check(!after.includes('mine:latest') && !after.includes('mine-copy:latest'), 'delete.gone');
  await expectError('delete.unknown_404', () => ollama.delete({ model: 'mine' }), 404);
  await expectError('copy.unknown_404', () => ollama.copy({ source: 'nothing-here', destination: 'x' }), 404);
  await expectError('create.bad_param_400', () => ollama.create({ model: 'bad', from: model, parameters: { nonsense: 1 } }), 400);

  // create from an uploaded blob (the way `ollama create` sends local files)
  const bytes = readFileSync(fixture);
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  const base = host.replace(/\/$/, '');
  const bad = await fetch(`${base}/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'POST', body: bytes });
  check(bad.status === 400, 'blobs.digest_mismatch_400', String(bad.status));
  const up = await fetch(`${base}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  check(up.status === 201, 'blobs.upload_201', String(up.status));
  const head = await fetch(`${base}/api/blobs/${digest}`, { method: 'HEAD' });
  check(head.status === 200, 'blobs.head_200');
  const fromBlob = await ollama.create({ model: 'from-blob', files: { 'model.gguf': digest } });
  check(fromBlob.status === 'success', 'create.files', JSON.stringify(fromBlob));
  const fb = await ollama.generate({ model: 'from-blob', prompt: 'Why is the sky blue?', options: greedy, think: false });
  check(fb.done && fb.response === noThink.response, 'create.files_generates');
  await ollama.delete({ model: 'from-blob' });

  // ---- pull / push against something that is not a registry
  const ghost = `${fakeRegistry}/library/ghost:latest`;
  try {
    await ollama.pull({ model: ghost, insecure: true });
    check(false, 'pull.error_nonstream', 'no error');
  } catch (e) {
    check(e.name === 'ResponseError' && e.status_code >= 400, 'pull.error_nonstream', `${e.status_code} ${e.error}`);
  }
  try {
    const seen = [];
    for await (const p of await ollama.pull({ model: ghost, insecure: true, stream: true })) seen.push(p.status);
    check(false, 'pull.error_stream', 'no error');
  } catch (e) {
    check(e instanceof Error && e.message.length > 0, 'pull.error_stream', e.message);
  }
  await ollama.copy({ source: model, destination: `${fakeRegistry}/library/pushed:latest` });
  try {
    await ollama.push({ model: `${fakeRegistry}/library/pushed:latest`, insecure: true });
    check(false, 'push.error_nonstream', 'no error');
  } catch (e) {
    check(e.name === 'ResponseError' && e.status_code >= 400, 'push.error_nonstream', `${e.status_code} ${e.error}`);
  }
  await ollama.delete({ model: `${fakeRegistry}/library/pushed:latest` });
  await expectError('push.unknown_model_404', () => ollama.push({ model: 'not-here', insecure: true }), 404);
}

main().then(() => {
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(failed ? 1 : 0);
}, (e) => {
  console.log(`FAIL ollama.exception ${e.stack || e}`);
  process.exit(1);
});
