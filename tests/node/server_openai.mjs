// server_openai.mjs - drives `seek serve`'s OpenAI-compatible API with the official `openai` npm
// client (tests/test_server.py starts the server and runs this).  Prints one "PASS name" /
// "FAIL name detail" line per check and a last line "RESULT {json}" with outputs the Python side
// compares with the Ollama API's.
//
// usage: node server_openai.mjs BASE_URL(with /v1) MODEL
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'seek', maxRetries: 0 });
let failed = 0;
const result = {};

function check(ok, name, detail = '') {
  if (!ok) failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} openai.${name}${detail ? ' ' + detail : ''}`);
  return ok;
}

async function expectError(name, fn, status) {
  try {
    await fn();
    check(false, name, 'no error thrown');
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === status && typeof e.message === 'string' && e.error &&
      typeof e.error.message === 'string' && typeof e.error.type === 'string', name, `(${e.status} ${e.message})`);
  }
}

const messages = [{ role: 'user', content: 'Tell me a joke.' }];
const greedy = { temperature: 0, seed: 42, max_tokens: 24 };

async function main() {
  // ---- models
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  const ids = models.map((m) => m.id);
  check(ids.includes(`${model}:latest`) && models.every((m) => m.object === 'model' && m.owned_by && m.created > 0),
    'models.list', ids.join(','));
  const one = await client.models.retrieve(`${model}:latest`);
  check(one.id === `${model}:latest`, 'models.retrieve');
  await expectError('models.retrieve_404', () => client.models.retrieve('no-such-model'), 404);

  // ---- chat completions
  const c = await client.chat.completions.create({ model, messages, ...greedy });
  const msg = c.choices[0].message;
  check(c.object === 'chat.completion' && c.id.startsWith('chatcmpl-') && msg.role === 'assistant' &&
    ['stop', 'length'].includes(c.choices[0].finish_reason), 'chat.fields');
  check(c.usage.completion_tokens > 0 && c.usage.prompt_tokens > 0 &&
    c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens, 'chat.usage', JSON.stringify(c.usage));
  check(typeof msg.reasoning_content === 'string' && msg.reasoning_content === msg.reasoning, 'chat.reasoning_fields');

  const stream = await client.chat.completions.create({ model, messages, ...greedy, stream: true,
    stream_options: { include_usage: true } });
  let content = '', reasoning = '', reasoning2 = '', finish = null, usage = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    if (ch.object !== 'chat.completion.chunk') check(false, 'chat.stream_object', ch.object);
    if (ch.usage) usage = ch.usage;
    const choice = ch.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? '';
    reasoning += choice.delta.reasoning_content ?? '';
    reasoning2 += choice.delta.reasoning ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  check(chunks > 3 && reasoning.length > 0 && reasoning === reasoning2, 'chat.stream_reasoning_deltas');
  check(content === (msg.content ?? '') && reasoning === (msg.reasoning_content ?? ''), 'chat.stream_equals_nonstream',
    JSON.stringify([reasoning.slice(0, 30), (msg.reasoning_content ?? '').slice(0, 30)]));
  check(finish === c.choices[0].finish_reason && usage && usage.completion_tokens === c.usage.completion_tokens,
    'chat.stream_usage_finish', JSON.stringify(usage));
  result.chat = { thinking: msg.reasoning_content ?? '', content: msg.content ?? '',
    completion_tokens: c.usage.completion_tokens, prompt_tokens: c.usage.prompt_tokens };

  const none = await client.chat.completions.create({ model, messages, ...greedy, reasoning_effort: 'none' });
  check(!none.choices[0].message.reasoning_content && none.choices[0].message.content.length > 0, 'chat.reasoning_effort_none');
  result.chat_nothink = { content: none.choices[0].message.content };

  const len = await client.chat.completions.create({ model, messages, temperature: 0, max_completion_tokens: 4 });
  check(len.choices[0].finish_reason === 'length' && len.usage.completion_tokens === 4, 'chat.max_completion_tokens');
  const text = none.choices[0].message.content;
  const cut = Math.max(1, Math.floor(text.length / 2));
  const stopStr = text.slice(cut, cut + 3);
  if (stopStr.trim().length > 0) {
    const st = await client.chat.completions.create({ model, messages, ...greedy, reasoning_effort: 'none', stop: stopStr });
    check(st.choices[0].message.content === text.slice(0, text.indexOf(stopStr)) && st.choices[0].finish_reason === 'stop',
      'chat.stop_string');
  }
  const js = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 4,
    response_format: { type: 'json_object' }, frequency_penalty: 0.5, presence_penalty: 0.5, top_p: 0.9 });
  check(js.choices[0].finish_reason === 'length', 'chat.response_format_accepted');

  await expectError('chat.unknown_model_404', () => client.chat.completions.create({ model: 'nope', messages }), 404);
  await expectError('chat.bad_type_400', () => client.chat.completions.create({ model, messages, temperature: 'hot' }), 400);
  await expectError('chat.no_messages_400', () => client.chat.completions.create({ model, messages: [] }), 400);

  // ---- completions
  const comp = await client.completions.create({ model, prompt: 'Why is the sky blue?', ...greedy });
  check(comp.object === 'text_completion' && comp.choices[0].finish_reason && comp.usage.completion_tokens > 0,
    'completions.fields', JSON.stringify(comp.usage));
  let ctext = '', cfinish = null;
  for await (const ch of await client.completions.create({ model, prompt: 'Why is the sky blue?', ...greedy, stream: true })) {
    ctext += ch.choices[0]?.text ?? '';
    if (ch.choices[0]?.finish_reason) cfinish = ch.choices[0].finish_reason;
  }
  check(ctext === comp.choices[0].text && cfinish === comp.choices[0].finish_reason, 'completions.stream_equals_nonstream');
  await expectError('completions.unknown_model_404', () => client.completions.create({ model: 'nope', prompt: 'x' }), 404);

  // ---- embeddings (the SDK asks for base64 by default and decodes it)
  const e64 = await client.embeddings.create({ model, input: 'hello world' });
  const ef = await client.embeddings.create({ model, input: ['hello world', 'bye'], encoding_format: 'float' });
  const v64 = e64.data[0].embedding, vf = ef.data[0].embedding;
  check(e64.object === 'list' && v64.length > 0 && v64.length === vf.length &&
    v64.every((x, i) => Math.abs(x - vf[i]) < 1e-6) && ef.data.length === 2 && ef.data[1].index === 1,
    'embeddings.base64_equals_float', `dim ${v64.length}`);
  check(ef.usage.prompt_tokens > 0, 'embeddings.usage');
  const small = await client.embeddings.create({ model, input: 'hello world', dimensions: 8, encoding_format: 'float' });
  const n8 = Math.sqrt(small.data[0].embedding.reduce((s, x) => s + x * x, 0));
  check(small.data[0].embedding.length === 8 && Math.abs(n8 - 1) < 1e-4, 'embeddings.dimensions');
  result.embedding = vf;
  await expectError('embeddings.unknown_model_404', () => client.embeddings.create({ model: 'nope', input: 'x' }), 404);
  await expectError('embeddings.bad_input_400', () => client.embeddings.create({ model, input: 42 }), 400);
}

main().then(() => {
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(failed ? 1 : 0);
}, (e) => {
  console.log(`FAIL openai.exception ${e.stack || e}`);
  process.exit(1);
});
