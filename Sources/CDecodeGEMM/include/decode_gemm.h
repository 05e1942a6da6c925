#ifndef TROUPE_DECODE_GEMM_H
#define TROUPE_DECODE_GEMM_H

/* The decoding product y = x Wᵀ + bias (x: n rows of k, W: rows of k) with AVX-512 registers, for
   TroupeTensor's StreamingGEMM, which owns the chunking and the threads. Each 512-bit accumulator
   holds the 8-lane partial sums of two input rows against one W row, so every output element gets
   exactly StreamingGEMM's arithmetic (8-lane sums over k in order, each product and sum rounded
   separately, lanes added ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), the bias, then the
   k % 8 tail in order): the same bits as its portable kernel, with half the instructions. */

/* 1 when this CPU and the OS run AVX-512F and AVX-512DQ instructions, else 0 (always 0 off x86-64). */
int troupe_decode_wide_hardware(void);

/* x (n, k) packed for troupe_decode_rows into a buffer of the calling thread (reused by its next
   call): ceil(n / 2) pairs of rows, each the two rows' 8-float blocks of k & ~7 interleaved (an odd
   last row paired with itself). NULL when the buffer cannot be had or n < 1. */
const float *troupe_decode_pack(const float *x, long n, long k);

/* y[r][o] for r < n and lo <= o < hi (y's rows are `ldy` floats apart) from `pairs` (troupe_decode_pack
   of x) and x itself (its k % 8 tail); bias may be NULL. `prefetch` 1 hints W a few rows ahead of the
   first block of input rows (later blocks read it from cache). Only where troupe_decode_wide_hardware()
   is 1. */
void troupe_decode_rows(const float *pairs, const float *x, long n, long k, const float *w, const float *bias,
                        float *y, long ldy, long lo, long hi, int prefetch);

#endif
