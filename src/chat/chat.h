/*
 * chat.h - turning a conversation into a prompt, and model output back into thinking and answer.
 *
 *  jinja_*   a Jinja2 subset engine for the `tokenizer.chat_template` strings models ship (jinja.c and
 *            friends): statements if/elif/else, for (with else, loop.*, inline if filter),
 *            set (incl. namespace attributes and block set), macro/call, break/continue; expressions
 *            with Python-like values (none, bool, int, float, string, list, dict), slicing, `in`, `is`
 *            tests, `~`, arithmetic and comparisons, the filters and string/dict/list methods real
 *            templates use, raise_exception() and strftime_now().  Whitespace control as Hugging Face
 *            transformers renders chat templates: {%- -%} plus trim_blocks and lstrip_blocks on, and
 *            tojson as json.dumps(ensure_ascii=False).  Output is byte-identical to python3-jinja2
 *            configured that way for the published templates.
 *  chat_*    rendering a list of messages with a model's template (chat.c).
 *  reason_*  streaming split of generated text into thinking and content (reason.c).
 */
#ifndef SEEK_CHAT_H
#define SEEK_CHAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../base/base.h"

/* ---- Jinja ------------------------------------------------------------------------------------- */

typedef struct jinja_tmpl jinja_tmpl;

/* Parses a template; NULL with err set (message with line and column) on a syntax error. */
jinja_tmpl *jinja_parse(const char *src, size_t len, seek_err *err);
void jinja_free(jinja_tmpl *t);

/* Renders with the top-level variables of `ctx` (a JSON object: messages, tools, add_generation_prompt,
 * bos_token, eos_token, ...; any other keys become variables too).  Returns a malloc'd NUL-terminated
 * string (caller frees) or NULL with err set (runtime error such as raise_exception("..."), with the
 * template's message).  Rendering is bounded: output size, loop iterations and recursion depth have
 * limits that turn into errors, so a hostile template cannot hang or exhaust memory. */
char *jinja_render(const jinja_tmpl *t, const json_t *ctx, seek_err *err);

/* ---- chat prompts ------------------------------------------------------------------------------- */

typedef struct {
    const json_t *messages;     /* array of {role, content, [thinking], [tool_calls], ...} */
    const json_t *tools;        /* array or NULL */
    bool add_generation_prompt; /* end with the assistant's turn opener */
    const char *bos_token;      /* text of BOS ("" if none) */
    const char *eos_token;      /* text of EOS ("" if none) */
} chat_input;

/* Renders `template_src` (a Jinja chat template) over the input.  Messages' `thinking` fields are
 * not passed to the template (earlier turns' thinking is not history).  Returns malloc'd text or NULL
 * with err set. */
char *chat_render(const char *template_src, const chat_input *in, seek_err *err);

/* Whether a rendered prompt ends by opening a thought ("<think>" followed by optional whitespace), as
 * the DeepSeek-R1 templates do: generation then starts inside the thinking section. */
bool chat_prompt_opens_think(const char *prompt);

/* ---- reasoning stream ----------------------------------------------------------------------------- */

/* The parser is fed decoded text as it streams and calls `emit` with pieces marked thinking or not.
 * Tags split across calls are held back until they are complete or can no longer be a tag.
 *   - started in thinking (the prompt opened <think>): everything until "</think>" is thinking; a
 *     "<think>" at the very start of output is swallowed (some models repeat it).
 *   - started in content: a "<think>" as the first non-whitespace output opens a thought; elsewhere it
 *     is ordinary content.
 *   - after "</think>", the whitespace right after the tag is dropped and all the rest is content; a
 *     second "<think>" there is content.
 * Tag text is never emitted.  Embedded; no allocation. */
typedef void (*reason_emit_fn)(void *ud, bool thinking, const char *text, size_t len);

typedef struct {
    int state;          /* internal */
    char hold[16];      /* possible partial tag held back */
    size_t n_hold;
    size_t n_thinking_bytes;
    const char *open_tag;  /* "<think>" */
    const char *close_tag; /* "</think>" */
} reason_parser;

void reason_init(reason_parser *p, bool start_in_thinking);
void reason_feed(reason_parser *p, const char *text, size_t len, reason_emit_fn emit, void *ud);
/* End of output: emits whatever is held back (an unfinished tag is emitted as text). */
void reason_flush(reason_parser *p, reason_emit_fn emit, void *ud);
/* True while output is inside a thought. */
bool reason_in_thinking(const reason_parser *p);

#endif
