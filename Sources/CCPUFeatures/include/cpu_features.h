#ifndef TROUPE_CPU_FEATURES_H
#define TROUPE_CPU_FEATURES_H

/* What the C kernels check before they run AVX-512 instructions. 1 when this is x86-64, the OS
   saves AVX-512 state (XCR0: SSE, AVX, opmask and ZMM) and CPUID leaf 7 has every bit of `leaf7ebx`
   (e.g. 1 << 16: AVX512F) set in EBX; `leaf7eax1` receives leaf 7 subleaf 1's EAX (0 where the CPU
   has no such subleaf). Else 0. */
int troupe_avx512_usable(unsigned leaf7ebx, unsigned *leaf7eax1);

#endif
