// libFuzzer target: protocol::parse_iclock_query (every /iclock/ request target).

#include "protocol/query.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace adms::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto target = adms::fuzz::as_text(data, size);
    auto parsed = parse_iclock_query(target);
    if (!parsed) {
        // A failure is a value with a reason (missing, invalid or conflicting SN).
        FUZZ_CHECK(!parsed.error.message.empty());
        return 0;
    }
    const auto& query = *parsed.query;
    // The SN is validated; the path is the target before '?', as sent.
    FUZZ_CHECK(is_valid_serial_number(query.serial_number));
    FUZZ_CHECK(query.path == target.substr(0, target.find('?')));
    for (const auto& extra : query.extra) {
        FUZZ_CHECK(query.find_extra(extra.key) != nullptr);
    }
    return 0;
}
