#ifndef TROUPE_FUZZER_DRIVER_H
#define TROUPE_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this binary was linked with libFuzzer (`-sanitize=fuzzer`), else 0.
int troupe_libfuzzer_available(void);

/// Runs libFuzzer's driver over `callback` with libFuzzer's own flags in argv; only when available.
int troupe_libfuzzer_run(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
