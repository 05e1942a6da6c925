#ifndef TROUPE_CBF16_H
#define TROUPE_CBF16_H

#include <stdint.h>

/* Matrix products on bfloat16 operands with float accumulation, C += op(A)·op(B), for the learner's
   backward pass (TroupeTensor's BF16GEMM drives these; it owns the blocking loops and the threads).

   Operands are float matrices, rounded to bfloat16 (nearest, ties to even; subnormals to zero) while
   they are packed. Packed operands hold k in pairs, one 32-bit word per pair (low half the even k),
   as AVX-512 BF16's VDPBF16PS consumes them: op(A) in slivers of TROUPE_BF16_MR rows, op(B) in
   slivers of TROUPE_BF16_NR columns, each sliver pair-major. */

#define TROUPE_BF16_MR 12    /* rows of C per micro-kernel tile */
#define TROUPE_BF16_NR 32    /* columns of C per tile: two 16-float vectors */
#define TROUPE_BF16_KC 384   /* k per packed block (even) */
#define TROUPE_BF16_MC 96    /* rows of C per block a thread packs and computes */
#define TROUPE_BF16_NC 3072  /* columns of op(B) per packed block */

/* 1 when this CPU and the OS run AVX-512 BF16 instructions (VDPBF16PS) and AVX512BW, else 0 (always
   0 off x86-64, where only the portable code is built). */
int troupe_bf16_hardware(void);

/* op(B) rows k0 ..< k0+kc, columns j0 ..< j0+nc, as ceil(nc / NR) slivers from `packed`, each
   ceil(kc / 2) · NR words; columns past nc and the k past kc are zero. `hardware` 1 (only where
   troupe_bf16_hardware() is 1) packs with AVX-512 instructions, 0 in plain C: the same words. */
void troupe_bf16_pack_b(int hardware, int transB, const float *b, long ldb, long k0, long kc, long j0, long nc, uint32_t *packed);

/* C rows i0 ..< i0+mc, columns 0 ..< nc (c points at column 0 of the block) += op(A) rows i0 ..< i0+mc,
   k0 ..< k0+kc · the packed block of op(B). `hardware` 1 runs VDPBF16PS (only where
   troupe_bf16_hardware() is 1); 0 a portable kernel that computes each sum in the same order with the
   same roundings (one fused multiply-add per product, subnormal results flushed), which gave the
   hardware's bits on the CPU it was checked on (an AMD EPYC, Zen 4). Packs op(A) into a buffer of the
   calling thread; aborts, saying so, when that buffer cannot be had (a few hundred KB). */
void troupe_bf16_block(int hardware, int transA, const float *a, long lda, long i0, long mc, long k0, long kc,
                       const uint32_t *packedB, long nc, float *c, long ldc);

/* A buffer for packed op(B) of at least `words` 32-bit words, owned by the calling thread and reused
   by its next call (troupe_bf16_block packs op(A) into another); NULL when memory runs out. */
uint32_t *troupe_bf16_packed_b_buffer(long words);

#endif
