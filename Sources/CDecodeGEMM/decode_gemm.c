#include "decode_gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Each product and each sum is rounded on its own: a fused multiply-add would change the bits. */
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <immintrin.h>
#include "cpu_features.h"

int troupe_decode_wide_hardware(void) {
    unsigned leaf7eax1;
    return troupe_avx512_usable(1u << 16 | 1u << 17, &leaf7eax1);                     /* AVX512F, AVX512DQ */
}

#define WIDE __attribute__((target("avx512f,avx512dq")))
#define INLINE static inline __attribute__((always_inline))

/* The 8 lanes of one 256-bit half added as StreamingGEMM.laneSum does. */
WIDE INLINE float lane_sum(__m256 a) {
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));   /* l0+l4 … l3+l7 */
    __m128 quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));                        /* h0+h2, h1+h3 */
    return _mm_cvtss_f32(quarter) + _mm_cvtss_f32(_mm_shuffle_ps(quarter, quarter, 1));
}

/* One output element from its 8-lane sums: the bias, then the k % 8 tail in order. */
INLINE float finish(float sum, float bias, const float *w, const float *x, long full, long k) {
    float s = sum + bias;
    for (long j = full; j < k; j++) {
        float product = w[j] * x[j];
        s += product;
    }
    return s;
}

/* 8 lanes of k at i: each of the P pairs against each of the R W rows. */
#define STEP(i)                                                                                   \
    do {                                                                                          \
        __m512 wv[4];                                                                             \
        for (int r = 0; r < rowsOfW; r++) wv[r] = _mm512_broadcast_f32x8(_mm256_loadu_ps(w0 + r * k + (i))); \
        for (int p = 0; p < pairsOfX; p++) {                                                      \
            __m512 xv = _mm512_load_ps(x0 + p * pairStride + 2 * (i));                            \
            for (int r = 0; r < rowsOfW; r++) acc[p][r] = _mm512_add_ps(acc[p][r], _mm512_mul_ps(wv[r], xv)); \
        }                                                                                         \
    } while (0)

/* P pairs of input rows (from pair p0) against R W rows (from o): P·R accumulators of 16 lanes, each
   the 8-lane sums of the pair's two rows. One function per (P, R), so each gets its own registers. */
#define TILE_FUNCTION(P, R)                                                                        \
WIDE __attribute__((noinline)) static void tile_##P##_##R(                                         \
        const float *pairs, const float *x, long n, long k, long p0, const float *w, long o,      \
        const float *bias, float *y, long ldy, long ahead) {                                        \
    enum { pairsOfX = P, rowsOfW = R };                                                           \
    long full = k & ~7L, pairStride = 2 * full;                                                   \
    __m512 acc[P][R];                                                                             \
    for (int p = 0; p < P; p++)                                                                   \
        for (int r = 0; r < R; r++) acc[p][r] = _mm512_setzero_ps();                              \
    const float *w0 = w + o * k, *x0 = pairs + p0 * pairStride;                                   \
    long i = 0;                                                                                   \
    /* Two steps per 64-byte line of each W row, with one hint per line when prefetching. */     \
    if (ahead) {                                                                                  \
        for (; i + 16 <= full; i += 16) {                                                         \
            for (int r = 0; r < R; r++) __builtin_prefetch(w0 + r * k + i + ahead, 0, 0);         \
            STEP(i); STEP(i + 8);                                                                 \
        }                                                                                         \
    } else {                                                                                      \
        for (; i + 16 <= full; i += 16) { STEP(i); STEP(i + 8); }                                 \
    }                                                                                             \
    if (i < full) STEP(i);                                                                        \
    for (int p = 0; p < P; p++) {                                                                 \
        long r0 = 2 * (p0 + p), r1 = r0 + 1;                                                      \
        for (int r = 0; r < R; r++) {                                                             \
            float b = bias ? bias[o + r] : 0.0f;                                                  \
            const float *row = w0 + r * k;                                                        \
            y[r0 * ldy + o + r] = finish(lane_sum(_mm512_castps512_ps256(acc[p][r])), b, row, x + r0 * k, full, k); \
            if (r1 < n)                                                                           \
                y[r1 * ldy + o + r] = finish(lane_sum(_mm512_extractf32x8_ps(acc[p][r], 1)), b, row, x + r1 * k, full, k); \
        }                                                                                         \
    }                                                                                             \
}

TILE_FUNCTION(1, 1) TILE_FUNCTION(1, 2) TILE_FUNCTION(1, 3) TILE_FUNCTION(1, 4)
TILE_FUNCTION(2, 1) TILE_FUNCTION(2, 2) TILE_FUNCTION(2, 3) TILE_FUNCTION(2, 4)
TILE_FUNCTION(3, 1) TILE_FUNCTION(3, 2) TILE_FUNCTION(3, 3) TILE_FUNCTION(3, 4)
TILE_FUNCTION(4, 1) TILE_FUNCTION(4, 2) TILE_FUNCTION(4, 3) TILE_FUNCTION(4, 4)

typedef void (*Tile)(const float *, const float *, long, long, long, const float *, long, const float *, float *, long, long);
static const Tile tiles[4][4] = {
    {tile_1_1, tile_1_2, tile_1_3, tile_1_4}, {tile_2_1, tile_2_2, tile_2_3, tile_2_4},
    {tile_3_1, tile_3_2, tile_3_3, tile_3_4}, {tile_4_1, tile_4_2, tile_4_3, tile_4_4},
};

WIDE void troupe_decode_rows(const float *pairs, const float *x, long n, long k, const float *w, const float *bias,
                             float *y, long ldy, long lo, long hi, int prefetch) {
    long pairCount = (n + 1) / 2;
    /* Four W rows at a time against every block of four pairs: the rows stay in cache (L1, or L2 for
       long rows) for all blocks, so W is read from memory once, and only the first block prefetches it. */
    for (long o = lo; o < hi; o += 4) {
        int R = hi - o < 4 ? (int)(hi - o) : 4;
        for (long p0 = 0; p0 < pairCount; p0 += 4) {
            int P = pairCount - p0 < 4 ? (int)(pairCount - p0) : 4;
            tiles[P - 1][R - 1](pairs, x, n, k, p0, w, o, bias, y, ldy, prefetch && p0 == 0 ? 4 * k : 0);
        }
    }
}

#else

int troupe_decode_wide_hardware(void) { return 0; }

void troupe_decode_rows(const float *pairs, const float *x, long n, long k, const float *w, const float *bias,
                        float *y, long ldy, long lo, long hi, int prefetch) {
    abort();   /* never called: troupe_decode_wide_hardware() is 0 */
}

#endif

static __thread float *pairBuffer;
static __thread long pairBufferFloats;
/* Frees a thread's buffer when the thread ends (samplers may run on short-lived threads). Should the
   key not be had, a thread that ends leaks its buffer (a few hundred KB), nothing worse. */
static pthread_key_t pairBufferKey;
static int pairBufferKeyMade;
static pthread_once_t pairBufferKeyOnce = PTHREAD_ONCE_INIT;
static void release_pair_buffer(void *buffer) {
    free(buffer);
    pairBuffer = NULL;
    pairBufferFloats = 0;
}
static void make_pair_buffer_key(void) { pairBufferKeyMade = pthread_key_create(&pairBufferKey, release_pair_buffer) == 0; }

const float *troupe_decode_pack(const float *x, long n, long k) {
    long full = k & ~7L, pairCount = (n + 1) / 2, floats = pairCount * 2 * full;
    if (n < 1) return NULL;
    if (floats > pairBufferFloats) {
        pthread_once(&pairBufferKeyOnce, make_pair_buffer_key);
        free(pairBuffer);
        pairBuffer = aligned_alloc(64, (size_t)(floats * 4 + 63) / 64 * 64);
        pairBufferFloats = pairBuffer ? floats : 0;
        if (pairBufferKeyMade) pthread_setspecific(pairBufferKey, pairBuffer);
        if (!pairBuffer) return NULL;
    }
    for (long p = 0; p < pairCount; p++) {
        const float *first = x + 2 * p * k, *second = 2 * p + 1 < n ? first + k : first;
        float *out = pairBuffer + p * 2 * full;
        for (long i = 0; i < full; i += 8) {
            memcpy(out + 2 * i, first + i, 8 * sizeof(float));
            memcpy(out + 2 * i + 8, second + i, 8 * sizeof(float));
        }
    }
    return pairBuffer ? pairBuffer : x;   /* k < 8: nothing to pack, any non-NULL pointer will do */
}
