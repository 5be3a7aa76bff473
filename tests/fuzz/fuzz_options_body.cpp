// libFuzzer target: protocol::parse_options_body (table=options bodies).

#include "protocol/options_body.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace adms::protocol;
using adms::fuzz::check_rejected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto body = adms::fuzz::as_text(data, size);
    auto result = parse_options_body(body);
    auto lines = adms::fuzz::count_lines(body);

    // Items split on ',' per line; blank ones are skipped, every other one is kept or rejected.
    std::size_t items = 0;
    text::line_reader reader{body};
    while (auto line = reader.next()) {
        for (auto item : text::split(line->text, ',')) {
            items += text::is_blank(item) ? 0 : 1;
        }
    }
    FUZZ_CHECK(result.records.size() + result.rejected.size() == items);

    for (const auto& [key, value] : result.records) {
        // "Keys are trimmed of spaces"; an empty key or control bytes in it are rejected.
        FUZZ_CHECK(!key.empty());
        FUZZ_CHECK(text::trim_spaces(key) == key);
        FUZZ_CHECK(!text::has_control_byte(key));
        // The item was split at its first '=' and items at ',', lines at LF.
        FUZZ_CHECK(key.find_first_of("=,") == std::string::npos);
        FUZZ_CHECK(value.find_first_of(",\n") == std::string::npos);
    }
    for (const auto& rejected : result.rejected) {
        check_rejected(rejected, lines.all);
        // `text` is the item itself, not the whole line.
        FUZZ_CHECK(!rejected.text.empty());
        FUZZ_CHECK(rejected.text.find_first_of(",\n") == std::string::npos);
    }
    return 0;
}
