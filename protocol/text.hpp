#pragma once

// Small string_view helpers shared by the body parsers: lines, fields, integers, reasons.
// Header-only on purpose: they are tiny and sit on the hot ATTLOG path.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace adms::protocol::text {

// One physical line of a body: its 1-based number and its bytes without the line ending.
struct numbered_line {
    std::size_t number = 0;
    std::string_view text;
};

// Walks a body line by line: splits on LF and strips one trailing CR, so LF, CRLF and a mix of
// both read the same. A final LF ends the last line; it does not start an empty one.
class line_reader {
  public:
    // Reads `body`, which must outlive the reader.
    explicit line_reader(std::string_view body) : rest_(body) {}

    // The next line, blank or not; nullopt once the body is used up.
    std::optional<numbered_line> next()
    {
        if (rest_.empty()) {
            return std::nullopt;
        }
        std::string_view line = rest_;
        auto end = rest_.find('\n');
        if (end == std::string_view::npos) {
            rest_ = {};
        } else {
            line = rest_.substr(0, end);
            rest_.remove_prefix(end + 1);
        }
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        return numbered_line{++number_, line};
    }

  private:
    std::string_view rest_;
    std::size_t number_ = 0;
};

// True for a line with nothing but spaces, TABs and CRs: such lines are skipped, not rejected.
inline bool is_blank(std::string_view line)
{
    return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// Splits `text` on every `separator` into `out` (cleared first; reused to avoid allocations).
// Empty fields are kept: "a\t\tb\t" gives "a", "", "b", "".
inline void split_into(std::string_view text, char separator, std::vector<std::string_view>& out)
{
    out.clear();
    while (true) {
        auto end = text.find(separator);
        if (end == std::string_view::npos) {
            out.push_back(text);
            return;
        }
        out.push_back(text.substr(0, end));
        text.remove_prefix(end + 1);
    }
}

// Splits `text` on every `separator`, keeping empty fields.
inline std::vector<std::string_view> split(std::string_view text, char separator)
{
    std::vector<std::string_view> out;
    split_into(text, separator, out);
    return out;
}

// ASCII case-insensitive equality (protocol words: table names, "time", "gettime"; never locale
// dependent).
inline bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// `text` without leading and trailing spaces and TABs.
inline std::string_view trim_spaces(std::string_view text)
{
    auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    auto last = text.find_last_not_of(" \t");
    return text.substr(first, last - first + 1);
}

// Parses the whole of `text` as a decimal integer ('-' allowed for signed types; no '+', no
// spaces); nullopt for anything else, including values that do not fit `Int`.
template <class Int>
std::optional<Int> parse_integer(std::string_view text)
{
    Int value{};
    const char* first = text.data();
    const char* last = text.data() + text.size();
    auto [end, error] = std::from_chars(first, last, value);
    if (error != std::errc{} || end != last || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// True when `text` is non-empty and every byte is an ASCII digit.
inline bool is_all_digits(std::string_view text)
{
    return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// True when `text` holds an ASCII control byte (NUL..US or DEL).
inline bool has_control_byte(std::string_view text)
{
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            return true;
        }
    }
    return false;
}

// `text` in single quotes for a rejection reason: at most `limit` bytes (then "..."), and every
// byte that is not printable ASCII shown as '?', so reasons stay short, printable ASCII even for
// a 1 MB line of binary junk.
inline std::string quote(std::string_view text, std::size_t limit = 40)
{
    std::string out;
    out.reserve(std::min(text.size(), limit) + 5);
    out += '\'';
    for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
        auto byte = static_cast<unsigned char>(text[i]);
        out += (byte < 0x20 || byte >= 0x7f) ? '?' : text[i];
    }
    if (text.size() > limit) {
        out += "...";
    }
    out += '\'';
    return out;
}

} // namespace adms::protocol::text
