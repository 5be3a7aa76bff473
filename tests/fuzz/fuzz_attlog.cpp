// libFuzzer target: protocol::parse_attlog (POST /iclock/cdata?table=ATTLOG bodies).

#include "protocol/attlog.hpp"
#include "protocol/civil_time.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace adms::protocol;
using adms::fuzz::check_rejected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto body = adms::fuzz::as_text(data, size);
    auto result = parse_attlog(body);
    auto lines = adms::fuzz::count_lines(body);

    // "Blank lines are skipped; every other line becomes a record or a rejected line."
    FUZZ_CHECK(result.records.size() + result.rejected.size() == lines.non_blank);
    for (const auto& record : result.records) {
        FUZZ_CHECK(!record.pin.empty());
        FUZZ_CHECK(record.pin.size() <= max_pin_length);
        FUZZ_CHECK(!text::has_control_byte(record.pin));
        // The time came from a valid "YYYY-MM-DD HH:MM:SS", so it formats and reads back.
        FUZZ_CHECK(parse_civil_time(format_civil_time(record.time)) == record.time);
        // Field 11 is the sequence number: it is extra_fields[5] as sent.
        if (record.sequence) {
            FUZZ_CHECK(record.extra_fields.size() >= 6);
            FUZZ_CHECK(text::parse_integer<std::uint64_t>(record.extra_fields[5]) ==
                       record.sequence);
        }
    }
    std::size_t previous = 0;
    for (const auto& rejected : result.rejected) {
        check_rejected(rejected, lines.all);
        FUZZ_CHECK(rejected.line_number > previous);
        previous = rejected.line_number;
        FUZZ_CHECK(rejected.text.find('\n') == std::string::npos);
    }
    return 0;
}
