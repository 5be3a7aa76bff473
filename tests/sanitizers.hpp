#pragma once

#include <cstddef>
#include <malloc.h>

// ADMS_ASAN is 1 when the tests are built with AddressSanitizer (tests/sanitize.sh): g++ defines
// __SANITIZE_ADDRESS__, clang has the feature. Checks that cannot hold under it say so and skip.
#if defined(__SANITIZE_ADDRESS__)
#define ADMS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADMS_ASAN 1
#endif
#endif
#ifndef ADMS_ASAN
#define ADMS_ASAN 0
#endif

namespace adms::test {

// Heap in use by this process (server and client in one process): arena blocks plus mmapped
// ones, which glibc uses for large allocations and uordblks leaves out. Meaningless under ASan
// (its allocator is not glibc's): guard bounds on it with ADMS_ASAN.
inline std::size_t heap_in_use()
{
    auto info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

} // namespace adms::test
