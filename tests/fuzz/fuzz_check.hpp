#pragma once

// What every fuzz target shares: the input as text, an invariant check that libFuzzer sees as a
// crash (so the input is kept as an artifact and the run fails), and the checks every body
// parser's result must pass.

#include "protocol/parse_result.hpp"
#include "protocol/text.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace adms::fuzz {

// Reports a broken invariant and aborts: libFuzzer saves the input that caused it.
[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line)
{
    std::fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
    std::abort();
}

} // namespace adms::fuzz

// Checks `condition` in every build type (assert() is gone under NDEBUG).
#define FUZZ_CHECK(condition)                                                                      \
    ((condition) ? void(0) : ::adms::fuzz::invariant_failed(#condition, __FILE__, __LINE__))

namespace adms::fuzz {

// The fuzzer's bytes as the string_view a parser takes.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

// True when `text` is printable ASCII only.
inline bool is_printable_ascii(std::string_view text)
{
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte >= 0x7f) {
            return false;
        }
    }
    return true;
}

// How many lines `body` has, and how many of them are not blank: the parsers number every line
// and account for every non-blank one.
struct line_counts {
    std::size_t all = 0;
    std::size_t non_blank = 0;
};

inline line_counts count_lines(std::string_view body)
{
    line_counts counts;
    protocol::text::line_reader lines{body};
    while (auto line = lines.next()) {
        ++counts.all;
        if (!protocol::text::is_blank(line->text)) {
            ++counts.non_blank;
        }
    }
    return counts;
}

// Checks one rejected line of a body with `line_count` lines: a 1-based line number within the
// body, and a reason that text::quote() keeps short and printable "even for a 1 MB line of
// binary junk".
inline void check_rejected(const protocol::rejected_line& rejected, std::size_t line_count)
{
    FUZZ_CHECK(rejected.line_number >= 1);
    FUZZ_CHECK(rejected.line_number <= line_count);
    FUZZ_CHECK(!rejected.reason.empty());
    FUZZ_CHECK(rejected.reason.size() <= 256);
    FUZZ_CHECK(is_printable_ascii(rejected.reason));
}

} // namespace adms::fuzz
