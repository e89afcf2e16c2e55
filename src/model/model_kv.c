/*
 * model_kv.c - the KV cache's element type ($SEEK_KV_CACHE_TYPE: f16 default, q8_0, f32) and the
 * bytes one cached vector takes (model.h).  The cache itself and the attention over it are in
 * model_forward.c.
 */
#include "model.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

static uint32_t kv_type_env = GGUF_TYPE_F16;
static pthread_once_t kv_type_once = PTHREAD_ONCE_INIT;

static void kv_type_read(void) {
    const char *env = getenv("SEEK_KV_CACHE_TYPE");
    if (!env || !*env || !strcasecmp(env, "f16")) kv_type_env = GGUF_TYPE_F16;
    else if (!strcasecmp(env, "q8_0")) kv_type_env = GGUF_TYPE_Q8_0;
    else if (!strcasecmp(env, "f32")) kv_type_env = GGUF_TYPE_F32;
    else log_warn("SEEK_KV_CACHE_TYPE=%s is not f16, q8_0 or f32; using f16", env);
}

uint32_t model_kv_type(int64_t head_dim) {
    pthread_once(&kv_type_once, kv_type_read);
    const kern_type_traits *tr = kern_traits(kv_type_env);
    if (head_dim % tr->blck != 0) return GGUF_TYPE_F16; /* a head must be whole blocks */
    return kv_type_env;
}

uint64_t model_kv_row_bytes(uint32_t type, int64_t n) {
    const kern_type_traits *tr = kern_traits(type);
    return (uint64_t)(n / tr->blck) * tr->type_size;
}
