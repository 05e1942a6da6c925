#include "fuzzer_driver.h"

// Weak: a normal build links without libFuzzer and finds it absent; a `-sanitize=fuzzer` build
// (scripts/libfuzzer.sh) resolves it from libFuzzer's runtime.
extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t)) __attribute__((weak));

int troupe_libfuzzer_available(void) { return LLVMFuzzerRunDriver != 0; }

int troupe_libfuzzer_run(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t)) {
    return LLVMFuzzerRunDriver(argc, argv, callback);
}
