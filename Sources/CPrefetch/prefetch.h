#ifndef TROUPE_PREFETCH_H
#define TROUPE_PREFETCH_H

/* Swift has no prefetch instruction; the decoding kernels import this one. A hint only: it never
   faults, so an address past the end of a buffer is harmless. */
static inline __attribute__((always_inline)) void troupe_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 0);
}

#endif
