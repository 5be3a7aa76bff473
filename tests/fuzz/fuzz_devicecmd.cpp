// libFuzzer target: protocol::parse_devicecmd and describe_return_code (POST /iclock/devicecmd).

#include "protocol/devicecmd.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace adms::protocol;
using adms::fuzz::check_rejected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto body = adms::fuzz::as_text(data, size);
    auto result = parse_devicecmd(body);
    auto lines = adms::fuzz::count_lines(body);

    // "A result starts at each line beginning with ID=": at most one record per such line.
    std::size_t id_lines = 0;
    text::line_reader reader{body};
    while (auto line = reader.next()) {
        id_lines += line->text.starts_with("ID=") ? 1 : 0;
    }
    FUZZ_CHECK(result.records.size() <= id_lines);

    for (const auto& record : result.records) {
        // A record has a non-empty ID and a numeric Return (else it is rejected).
        FUZZ_CHECK(!record.id.empty());
        FUZZ_CHECK(record.id.find('\n') == std::string::npos);
        FUZZ_CHECK(record.command.find('\n') == std::string::npos);
        FUZZ_CHECK(!describe_return_code(record.return_code).empty());
        // Content lines are joined by '\n' with trailing blank lines dropped.
        FUZZ_CHECK(!record.content.ends_with('\n'));
        for (const auto& item : record.info) {
            FUZZ_CHECK(item.key.find('\n') == std::string::npos);
            FUZZ_CHECK(item.value.find('\n') == std::string::npos);
        }
    }
    for (const auto& rejected : result.rejected) {
        // `text` is a line, or a whole multi-line result: no line-ending check here.
        check_rejected(rejected, lines.all);
    }
    return 0;
}
