// libFuzzer target: protocol::parse_operlog, find_field and to_user_info (table=OPERLOG bodies).

#include "protocol/civil_time.hpp"
#include "protocol/operlog.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace adms::protocol;
using adms::fuzz::check_rejected;

namespace {

// The tag rule of operlog.hpp: a letter, then letters, digits or '_' (at most 32 in all).
bool is_tag(std::string_view tag)
{
    auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
    if (tag.empty() || tag.size() > 32 || !letter(tag.front())) {
        return false;
    }
    for (char c : tag) {
        if (!letter(c) && !(c >= '0' && c <= '9') && c != '_') {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto body = adms::fuzz::as_text(data, size);
    auto result = parse_operlog(body);
    auto lines = adms::fuzz::count_lines(body);

    // Every non-blank line is kept: a record, or a rejected line.
    FUZZ_CHECK(result.records.size() + result.rejected.size() == lines.non_blank);
    for (const auto& record : result.records) {
        FUZZ_CHECK(is_tag(record.tag));
        FUZZ_CHECK(record.raw.starts_with(record.tag));
        FUZZ_CHECK(record.raw.find('\n') == std::string::npos);
        // OPLOG lines carry `oplog`; every other tag carries `fields`.
        FUZZ_CHECK((record.tag == "OPLOG") == record.oplog.has_value());
        if (record.oplog) {
            FUZZ_CHECK(record.fields.empty());
            FUZZ_CHECK(parse_civil_time(format_civil_time(record.oplog->time)) ==
                       record.oplog->time);
        }
        for (const auto& field : record.fields) {
            // find_field returns the value of the first field with that key.
            auto found = find_field(record, field.key);
            FUZZ_CHECK(found.has_value());
        }
        auto user = to_user_info(record);
        if (record.tag != "USER") {
            FUZZ_CHECK(!user);
        }
        if (user) {
            FUZZ_CHECK(!user->pin.empty());
            FUZZ_CHECK(find_field(record, "PIN") == std::string_view{user->pin});
        }
    }
    for (const auto& rejected : result.rejected) {
        check_rejected(rejected, lines.all);
        FUZZ_CHECK(rejected.text.find('\n') == std::string::npos);
    }
    return 0;
}
