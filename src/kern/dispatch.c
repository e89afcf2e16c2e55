/*
 * dispatch.c - run-time choice of compute kernels.
 *
 * What it is: CPU feature detection (cpuid + xgetbv on x86-64, NEON assumed on arm64), the
 * choice of the active ISA (best present, or $SEEK_ISA), and the merged per-type ops table
 * kern_best() that the engine calls through: each member comes from the active ISA's table
 * where that ISA has a kernel, else from the ISA below it (avx512 -> avx2: every CPU with our
 * AVX-512 set also has our AVX2 set), else from the scalar reference (kern_traits).  Mixing is
 * safe because every fast quantizer is bit-identical to the reference.
 * What it is not: the kernels themselves (quants_ref.c, quants_avx2.c, quants_avx512.c,
 * quants_neon.c, and actq*.c for the Q8_16 activations).
 *
 * This file is compiled without -m flags, so it runs on any CPU of the architecture; the ISA
 * files are only ever called after the checks below said the CPU and OS can run them.
 *
 * The per-ISA tables are referenced only on the architecture whose ISA files the Makefile
 * compiles (AVX2/AVX-512 on x86-64, NEON on arm64); referencing them also makes the linker pull
 * those objects out of libseek.a.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "actq.h"
#include "actq_impl.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ---- CPU detection ----------------------------------------------------------------- */

#if defined(__x86_64__)
/* XCR0, the OS-enabled register state.  Only valid when cpuid says OSXSAVE. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned detect_x86(void) {
    unsigned isas = 1u << KERN_ISA_SCALAR;
    uint32_t a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return isas;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1,
         f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return isas;
    uint64_t xcr0 = read_xcr0();
    bool ymm_os = (xcr0 & 0x6) == 0x6;    /* XMM and YMM state saved by the OS */
    bool zmm_os = (xcr0 & 0xe6) == 0xe6; /* plus opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return isas;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    bool f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    bool vnni = (c >> 11) & 1;
    /* The AVX2 file is compiled with -mavx2 -mfma -mf16c -mbmi2: the compiler may use any of
     * them anywhere in it, so all four are required. */
    bool has_avx2 = ymm_os && avx2 && fma && f16c && bmi2;
    if (has_avx2) isas |= 1u << KERN_ISA_AVX2;
    if (has_avx2 && zmm_os && f512 && bw && vl && dq && vnni) isas |= 1u << KERN_ISA_AVX512;
    return isas;
}
#endif

static unsigned cpu_isas;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_detect_once(void) {
#if defined(__x86_64__)
    cpu_isas = detect_x86();
#elif defined(__aarch64__)
    cpu_isas = (1u << KERN_ISA_SCALAR) | (1u << KERN_ISA_NEON); /* NEON is part of ARMv8-A */
#else
    cpu_isas = 1u << KERN_ISA_SCALAR;
#endif
}

unsigned kern_cpu_isas(void) {
    pthread_once(&cpu_once, cpu_detect_once);
    return cpu_isas;
}

static const char *const isa_names[KERN_ISA_COUNT] = {
    [KERN_ISA_SCALAR] = "scalar",
    [KERN_ISA_AVX2] = "avx2",
    [KERN_ISA_AVX512] = "avx512",
    [KERN_ISA_NEON] = "neon",
};

const char *kern_isa_name(int isa) {
    if (isa < 0 || isa >= KERN_ISA_COUNT) return "unknown";
    return isa_names[isa];
}

/* The table of an ISA compiled into this binary; NULL if none (scalar has no table: its ops
 * are kern_traits). */
static const kern_ops *const *isa_table(int isa) {
#if defined(__x86_64__)
    if (isa == KERN_ISA_AVX2) return kern_ops_avx2;
    if (isa == KERN_ISA_AVX512) return kern_ops_avx512;
#elif defined(__aarch64__)
    if (isa == KERN_ISA_NEON) return kern_ops_neon;
#endif
    (void)isa;
    return NULL;
}

/* ---- active ISA -------------------------------------------------------------------- */

static int active_isa;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void active_isa_once(void) {
    unsigned present = kern_cpu_isas();
    /* Best first; an ISA counts only if the CPU has it and this binary has its table. */
    static const int order[] = { KERN_ISA_AVX512, KERN_ISA_AVX2, KERN_ISA_NEON };
    active_isa = KERN_ISA_SCALAR;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if ((present >> order[i] & 1) && isa_table(order[i])) {
            active_isa = order[i];
            break;
        }
    }
    const char *env = getenv("SEEK_ISA");
    if (!env || !*env) return;
    for (int isa = 0; isa < KERN_ISA_COUNT; isa++) {
        if (strcmp(env, isa_names[isa]) != 0) continue;
        if (isa == KERN_ISA_SCALAR || ((present >> isa & 1) && isa_table(isa))) {
            active_isa = isa;
        } else {
            log_warn("SEEK_ISA=%s: not available on this CPU or build; using %s", env,
                     isa_names[active_isa]);
        }
        return;
    }
    log_warn("SEEK_ISA=%s: unknown (scalar, avx2, avx512, neon); using %s", env,
             isa_names[active_isa]);
}

int kern_active_isa(void) {
    pthread_once(&active_once, active_isa_once);
    return active_isa;
}

/* ---- ops tables -------------------------------------------------------------------- */

static const kern_ops no_ops; /* all NULL: "use the reference" */

const kern_ops *kern_isa_ops(int isa, uint32_t type) {
    if (type >= GGUF_TYPE_COUNT) return NULL;
    if (isa == KERN_ISA_SCALAR) return &no_ops;
    const kern_ops *const *table = isa_table(isa);
    if (!table) return NULL;
    return table[type] ? table[type] : &no_ops;
}

/* The ISA whose kernels stand in where isa has none (KERN_ISA_SCALAR: the reference). */
static int isa_fallback(int isa) {
    return isa == KERN_ISA_AVX512 ? KERN_ISA_AVX2 : KERN_ISA_SCALAR;
}

static kern_ops best_ops[GGUF_TYPE_COUNT];
static bool best_known[GGUF_TYPE_COUNT];
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

/* Reads $SEEK_ACTIVATIONS: true for seek's Q8_16 activations (default), false for llama.cpp's. */
static bool fine_activations(void) {
    const char *env = getenv("SEEK_ACTIVATIONS");
    if (!env || !*env || !strcmp(env, "q8_16")) return true;
    if (!strcmp(env, "llama")) return false;
    log_warn("SEEK_ACTIVATIONS=%s is not q8_16 or llama; using q8_16", env);
    return true;
}

static void best_once_fn(void) {
    const int active = kern_active_isa();
    const bool fine = fine_activations();
    for (uint32_t t = 0; t < GGUF_TYPE_COUNT; t++) {
        const kern_type_traits *tr = kern_traits(t);
        if (!tr) continue;
        kern_ops *o = &best_ops[t];
        for (int isa = active; isa != KERN_ISA_SCALAR; isa = isa_fallback(isa)) {
            const kern_ops *fast = kern_isa_ops(isa, t);
            if (!fast) continue;
            if (!o->vec_dot) o->vec_dot = fast->vec_dot;
            if (!o->from_float) o->from_float = fast->from_float;
            if (!o->to_float) o->to_float = fast->to_float;
            if (!o->axpy) o->axpy = fast->axpy;
            if (!o->dot_f32) o->dot_f32 = fast->dot_f32;
        }
        o->vec_dot_type = tr->vec_dot_type;
        if (fine && kern_q8_16_dot_ref[t]) {
            o->vec_dot_type = KERN_TYPE_Q8_16;
            o->vec_dot = kern_q8_16_dot_ref[t];
#if defined(__x86_64__)
            if (active != KERN_ISA_SCALAR && kern_q8_16_dot_avx2[t]) o->vec_dot = kern_q8_16_dot_avx2[t];
            if (active != KERN_ISA_SCALAR) o->gemm = kern_q8_16_gemm_avx2[t];
#elif defined(__aarch64__)
            if (active == KERN_ISA_NEON && kern_q8_16_dot_neon[t]) o->vec_dot = kern_q8_16_dot_neon[t];
#endif
        }
#if defined(__x86_64__)
        /* float weights: the activations are the float rows themselves (vec_dot_type F32) */
        if (active != KERN_ISA_SCALAR && kern_float_gemm_avx2[t].gemm && o->vec_dot_type == GGUF_TYPE_F32)
            o->gemm = kern_float_gemm_avx2[t];
        if (t == KERN_TYPE_Q8_16 && active != KERN_ISA_SCALAR) o->from_float = kern_q8_16_quantize_avx2;
#elif defined(__aarch64__)
        if (t == KERN_TYPE_Q8_16 && active == KERN_ISA_NEON) o->from_float = kern_q8_16_quantize_neon;
#endif
        if (!o->vec_dot) o->vec_dot = tr->vec_dot;
        if (!o->from_float) o->from_float = tr->from_float;
        if (!o->to_float) o->to_float = tr->to_float;
        if (!o->axpy) o->axpy = tr->axpy;
        if (!o->dot_f32) o->dot_f32 = tr->dot_f32;
        best_known[t] = true;
    }
}

const kern_ops *kern_best(uint32_t type) {
    if (type >= GGUF_TYPE_COUNT) return NULL;
    pthread_once(&best_once, best_once_fn);
    return best_known[type] ? &best_ops[type] : NULL;
}
