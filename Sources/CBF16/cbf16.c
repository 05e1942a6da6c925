#include "cbf16.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include "cpu_features.h"
#define TROUPE_BF16_X86 1
#endif

enum { MR = TROUPE_BF16_MR, NR = TROUPE_BF16_NR };

/* float → bfloat16 bits: nearest, ties to even; NaN stays NaN; a subnormal becomes a signed zero, as
   VDPBF16PS would read it (DAZ), so the portable kernel never meets one either. */
static inline uint32_t bf16(float value) {
    uint32_t u;
    memcpy(&u, &value, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t result = (u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : rounded;
    return (u & 0x7f800000u) == 0 ? (u >> 16) & 0x8000u : result;
}

#if TROUPE_BF16_X86
#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* bf16() on 16 lanes: each lane's bits in its low half. */
AVX512_BF16 static inline __m512i bf16_lanes(__m512 value) {
    __m512i u = _mm512_castps_si512(value), high = _mm512_srli_epi32(u, 16);
    __m512i bias = _mm512_add_epi32(_mm512_and_si512(high, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7fff));
    __m512i result = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    result = _mm512_mask_mov_epi32(result, nan, _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
    __mmask16 subnormal = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(result, subnormal, _mm512_and_si512(high, _mm512_set1_epi32(0x8000)));
}

/* Pair words of `count` (≤ 16) lanes: lo[j] in the low half, hi[j] (NULL: zero) in the high. */
AVX512_BF16 static inline void pair_words(const float *lo, const float *hi, int count, uint32_t *out) {
    __mmask16 mask = count >= 16 ? 0xffff : (__mmask16)((1u << count) - 1);
    __m512i words = bf16_lanes(_mm512_maskz_loadu_ps(mask, lo));
    if (hi) words = _mm512_or_si512(words, _mm512_slli_epi32(bf16_lanes(_mm512_maskz_loadu_ps(mask, hi)), 16));
    _mm512_mask_storeu_epi32(out, mask, words);
}

/* The pair words of 16 consecutive pairs of one row: 32 floats → 16 words. */
AVX512_BF16 static inline void row_words(const float *row, uint32_t *out) {
    __m256i first = _mm512_cvtepi32_epi16(bf16_lanes(_mm512_loadu_ps(row)));
    __m256i second = _mm512_cvtepi32_epi16(bf16_lanes(_mm512_loadu_ps(row + 16)));
    _mm512_storeu_si512(out, _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1));
}

#endif

static inline float element(const float *m, long ld, int trans, long row, long col) {
    return trans ? m[col * ld + row] : m[row * ld + col];
}

static inline uint32_t pair(const float *m, long ld, int trans, long row0, long col0, int alongRows, int second) {
    uint32_t lo = bf16(element(m, ld, trans, row0, col0));
    if (!second) return lo;
    uint32_t hi = alongRows ? bf16(element(m, ld, trans, row0 + 1, col0)) : bf16(element(m, ld, trans, row0, col0 + 1));
    return lo | hi << 16;
}

#if TROUPE_BF16_X86
AVX512_BF16 static void pack_b_rows(const float *b, long ldb, long k0, long kc, long j0, long nc, uint32_t *packed) {
    long pairs = (kc + 1) / 2;
    for (long s = 0; s < nc; s += NR, packed += pairs * NR) {
        int cols = nc - s < NR ? (int)(nc - s) : NR;
        for (long p = 0; p < pairs; p++) {
            const float *r0 = b + (k0 + 2 * p) * ldb + j0 + s, *r1 = 2 * p + 1 < kc ? r0 + ldb : NULL;
            uint32_t *out = packed + p * NR;
            if (cols < NR) memset(out, 0, NR * sizeof *out);
            pair_words(r0, r1 ? r1 : NULL, cols < 16 ? cols : 16, out);
            if (cols > 16) pair_words(r0 + 16, r1 ? r1 + 16 : NULL, cols - 16, out + 16);
        }
    }
}
#endif

void troupe_bf16_pack_b(int hardware, int transB, const float *b, long ldb, long k0, long kc, long j0, long nc, uint32_t *packed) {
#if TROUPE_BF16_X86
    if (hardware && !transB) { pack_b_rows(b, ldb, k0, kc, j0, nc, packed); return; }
#endif
    long pairs = (kc + 1) / 2;
    for (long s = 0; s < nc; s += NR, packed += pairs * NR) {
        long cols = nc - s < NR ? nc - s : NR;
        for (long p = 0; p < pairs; p++) {
            long k = k0 + 2 * p;
            int second = 2 * p + 1 < kc;
            uint32_t *out = packed + p * NR;
            if (!transB && cols == NR) {
                /* The common case (the backward's B is never transposed): two rows, contiguous. */
                const float *r0 = b + k * ldb + j0 + s, *r1 = r0 + ldb;
                if (second) for (int j = 0; j < NR; j++) out[j] = bf16(r0[j]) | bf16(r1[j]) << 16;
                else for (int j = 0; j < NR; j++) out[j] = bf16(r0[j]);
                continue;
            }
            for (long j = 0; j < NR; j++) out[j] = j < cols ? pair(b, ldb, transB, k, j0 + s + j, 1, second) : 0;
        }
    }
}

#if TROUPE_BF16_X86
AVX512_BF16 static void pack_a_vector(int transA, const float *a, long lda, long i0, long mc, long k0, long kc, uint32_t *packed) {
    long pairs = (kc + 1) / 2;
    for (long s = 0; s < mc; s += MR, packed += pairs * MR) {
        int rows = mc - s < MR ? (int)(mc - s) : MR;
        if (rows < MR) memset(packed, 0, (size_t)(pairs * MR) * sizeof *packed);
        if (transA) {
            for (long p = 0; p < pairs; p++) {
                const float *r0 = a + (k0 + 2 * p) * lda + i0 + s;
                pair_words(r0, 2 * p + 1 < kc ? r0 + lda : NULL, rows, packed + p * MR);
            }
            continue;
        }
        for (int r = 0; r < rows; r++) {
            const float *row = a + (i0 + s + r) * lda + k0;
            uint32_t words[16];
            long p = 0;
            for (; p + 16 <= kc / 2; p += 16) {
                row_words(row + 2 * p, words);
                for (int q = 0; q < 16; q++) packed[(p + q) * MR + r] = words[q];
            }
            for (; p < kc / 2; p++) packed[p * MR + r] = bf16(row[2 * p]) | bf16(row[2 * p + 1]) << 16;
            if (kc & 1) packed[(pairs - 1) * MR + r] = bf16(row[kc - 1]);
        }
    }
}
#endif

static void pack_a(int transA, const float *a, long lda, long i0, long mc, long k0, long kc, uint32_t *packed) {
    long pairs = (kc + 1) / 2;
    for (long s = 0; s < mc; s += MR, packed += pairs * MR) {
        long rows = mc - s < MR ? mc - s : MR;
        if (rows < MR) memset(packed, 0, (size_t)(pairs * MR) * sizeof *packed);
        if (transA) {
            /* op(A) rows are columns of A: a pair of k is two rows of A, contiguous along op(A)'s rows. */
            for (long p = 0; p < pairs; p++) {
                long k = k0 + 2 * p;
                const float *r0 = a + k * lda + i0 + s, *r1 = r0 + lda;
                uint32_t *out = packed + p * MR;
                if (2 * p + 1 < kc) for (long r = 0; r < rows; r++) out[r] = bf16(r0[r]) | bf16(r1[r]) << 16;
                else for (long r = 0; r < rows; r++) out[r] = bf16(r0[r]);
            }
        } else {
            for (long r = 0; r < rows; r++) {
                const float *row = a + (i0 + s + r) * lda + k0;
                for (long p = 0; p < kc / 2; p++) packed[p * MR + r] = bf16(row[2 * p]) | bf16(row[2 * p + 1]) << 16;
                if (kc & 1) packed[(pairs - 1) * MR + r] = bf16(row[kc - 1]);
            }
        }
    }
}

static uint32_t *thread_buffer(int slot, long words);

static inline float flush(float x) { return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x; }
static inline float widen(uint32_t half) { uint32_t u = half << 16; float f; memcpy(&f, &u, sizeof f); return f; }

/* VDPBF16PS per float lane, as the AMD EPYC (Zen 4) this was measured on computes it: acc += a.hi·b.hi,
   then acc += a.lo·b.lo, each step one fused multiply-add (the exact product added, the sum rounded to
   nearest; a product past FLT_MAX is not rounded to infinity first), results below the normal range
   flushed to zero. Intel's manual describes the same order; for products in float's normal range
   (every product of two normal bfloat16 values short of the extremes) fused and unfused agree. */
static void kernel_portable(long pairs, const uint32_t *a, const uint32_t *b, float *c, long ldc, long rows, long cols) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (long p = 0; p < pairs; p++, a += MR, b += NR) {
        for (int r = 0; r < MR; r++) {
            float ahi = widen(a[r] >> 16), alo = widen(a[r] & 0xffffu);
            for (int j = 0; j < NR; j++) {
                float t = flush(fmaf(ahi, widen(b[j] >> 16), acc[r][j]));
                acc[r][j] = flush(fmaf(alo, widen(b[j] & 0xffffu), t));
            }
        }
    }
    for (long r = 0; r < rows; r++)
        for (long j = 0; j < cols; j++) c[r * ldc + j] += acc[r][j];
}

#if TROUPE_BF16_X86
AVX512_BF16 static void kernel_hardware(long pairs, const uint32_t *a, const uint32_t *b, float *c, long ldc, long rows, long cols) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long p = 0; p < pairs; p++, a += MR, b += NR) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        for (int r = 0; r < MR; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
        }
    }
    __mmask16 low = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
    __mmask16 high = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (long r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        _mm512_mask_storeu_ps(row, low, _mm512_add_ps(_mm512_maskz_loadu_ps(low, row), acc[r][0]));
        _mm512_mask_storeu_ps(row + 16, high, _mm512_add_ps(_mm512_maskz_loadu_ps(high, row + 16), acc[r][1]));
    }
}
#endif

void troupe_bf16_block(int hardware, int transA, const float *a, long lda, long i0, long mc, long k0, long kc,
                       const uint32_t *packedB, long nc, float *c, long ldc) {
    long pairs = (kc + 1) / 2;
    uint32_t *packedA = thread_buffer(0, pairs * ((mc + MR - 1) / MR * MR));
    if (!packedA) {
        fprintf(stderr, "troupe: no memory for a packed block of a bf16 matrix product (%ld words)\n", pairs * ((mc + MR - 1) / MR * MR));
        abort();
    }
#if TROUPE_BF16_X86
    if (hardware) pack_a_vector(transA, a, lda, i0, mc, k0, kc, packedA);
    else
#endif
        pack_a(transA, a, lda, i0, mc, k0, kc, packedA);
    for (long jr = 0; jr < nc; jr += NR) {
        const uint32_t *bs = packedB + jr * pairs;
        long cols = nc - jr < NR ? nc - jr : NR;
        for (long ir = 0; ir < mc; ir += MR) {
            long rows = mc - ir < MR ? mc - ir : MR;
            float *tile = c + (i0 + ir) * ldc + jr;
#if TROUPE_BF16_X86
            if (hardware) { kernel_hardware(pairs, packedA + ir * pairs, bs, tile, ldc, rows, cols); continue; }
#endif
            kernel_portable(pairs, packedA + ir * pairs, bs, tile, ldc, rows, cols);
        }
    }
}

int troupe_bf16_hardware(void) {
#if !TROUPE_BF16_X86
    return 0;
#else
    unsigned leaf7eax1;
    if (!troupe_avx512_usable(1u << 16 | 1u << 30, &leaf7eax1)) return 0;              /* AVX512F, AVX512BW */
    return (leaf7eax1 >> 5) & 1;                                                      /* AVX512_BF16 */
#endif
}

/* Per thread: [0] its packed blocks of op(A), [1] the packed op(B) of the products it drives. */
static __thread uint32_t *threadBuffers[2];
static __thread long threadBufferWords[2];

static uint32_t *thread_buffer(int slot, long words) {
    if (words > threadBufferWords[slot]) {
        free(threadBuffers[slot]);
        threadBuffers[slot] = aligned_alloc(64, (size_t)(words * 4 + 63) / 64 * 64);
        threadBufferWords[slot] = threadBuffers[slot] ? words : 0;
    }
    return threadBuffers[slot];
}

uint32_t *troupe_bf16_packed_b_buffer(long words) { return thread_buffer(1, words); }
