#include "cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>

int troupe_avx512_usable(unsigned leaf7ebx, unsigned *leaf7eax1) {
    unsigned eax, ebx, ecx, edx;
    *leaf7eax1 = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return 0;   /* OSXSAVE */
    unsigned xcr0, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    if ((xcr0 & 0xe6u) != 0xe6u) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || (ebx & leaf7ebx) != leaf7ebx) return 0;
    if (eax >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) *leaf7eax1 = eax;
    return 1;
}

#else

int troupe_avx512_usable(unsigned leaf7ebx, unsigned *leaf7eax1) {
    (void)leaf7ebx;
    *leaf7eax1 = 0;
    return 0;
}

#endif
