/*
 * chat.c - a conversation to a prompt: the render context a chat template expects, and the check
 * whether the prompt leaves the model inside a <think> section.
 *
 * The context is what Hugging Face transformers passes to apply_chat_template: messages, tools,
 * add_generation_prompt, bos_token and eos_token.  Each message's "thinking" field is left out:
 * earlier turns' reasoning is not part of the history a model is shown again.
 */
#include "chat.h"

#include <ctype.h>
#include <string.h>

/* A copy of the messages array whose objects lack "thinking" (values are shared, not copied). */
static json_t *messages_without_thinking(const json_t *messages) {
    json_t *out = json_array();
    if (!out) return NULL;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *copy;
        if (json_is_object(m)) {
            copy = json_object();
            const char *key;
            json_t *val;
            /* json_object_foreach walks in insertion order, so the template sees the same key order */
            json_object_foreach((json_t *)m, key, val) {
                if (strcmp(key, "thinking") != 0 && copy) json_object_set(copy, key, val);
            }
        } else {
            copy = json_incref(m);
        }
        if (!copy || json_array_append_new(out, copy) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

char *chat_render(const char *template_src, const chat_input *in, seek_err *err) {
    if (!template_src || !in) {
        err_set(err, SEEK_EINVAL, "chat_render: no template or input");
        return NULL;
    }
    json_t *ctx = json_object();
    json_t *msgs = json_is_array(in->messages) ? messages_without_thinking(in->messages) : json_array();
    if (!ctx || !msgs) {
        json_decref(ctx);
        json_decref(msgs);
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    json_object_set_new(ctx, "messages", msgs);
    if (in->tools) json_object_set(ctx, "tools", (json_t *)in->tools);
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(in->add_generation_prompt));
    json_object_set_new(ctx, "bos_token", json_string(in->bos_token ? in->bos_token : ""));
    json_object_set_new(ctx, "eos_token", json_string(in->eos_token ? in->eos_token : ""));

    char *out = NULL;
    jinja_tmpl *t = jinja_parse(template_src, strlen(template_src), err);
    if (t) {
        out = jinja_render(t, ctx, err);
        jinja_free(t);
    }
    json_decref(ctx);
    return out;
}

bool chat_prompt_opens_think(const char *prompt) {
    if (!prompt) return false;
    size_t n = strlen(prompt);
    while (n > 0 && isspace((unsigned char)prompt[n - 1])) n--;
    static const char tag[] = "<think>";
    size_t k = sizeof tag - 1;
    return n >= k && memcmp(prompt + n - k, tag, k) == 0;
}
