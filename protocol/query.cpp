#include "protocol/query.hpp"

#include "protocol/text.hpp"

#include <boost/url/pct_string_view.hpp>

#include <algorithm>
#include <cctype>

namespace adms::protocol {
namespace {

using text::iequals;

// Percent-decodes one key or value ('+' is a space); a broken escape keeps the text as sent.
std::string decode_component(std::string_view text)
{
    auto valid = boost::urls::make_pct_string_view(text);
    if (!valid) {
        return std::string{text};
    }
    boost::urls::encoding_opts options;
    options.space_as_plus = true;
    return valid->decode(options);
}

// Where a known parameter is stored, or nullptr for an extra one.
std::optional<std::string>* known_slot(iclock_query& query, std::string_view key)
{
    struct slot {
        std::string_view key;
        std::optional<std::string> iclock_query::*member;
    };
    static constexpr slot slots[] = {
        {"table", &iclock_query::table},
        {"Stamp", &iclock_query::stamp},
        {"OpStamp", &iclock_query::op_stamp},
        {"options", &iclock_query::options},
        {"pushver", &iclock_query::push_version},
        {"language", &iclock_query::language},
        {"INFO", &iclock_query::info},
        {"type", &iclock_query::type},
    };
    for (const auto& s : slots) {
        if (iequals(key, s.key)) {
            return &(query.*(s.member));
        }
    }
    return nullptr;
}

} // namespace

const std::string* iclock_query::find_extra(std::string_view key) const
{
    auto it =
        std::find_if(extra.begin(), extra.end(), [&](const auto& kv) { return kv.key == key; });
    return it == extra.end() ? nullptr : &it->value;
}

bool is_valid_serial_number(std::string_view serial_number)
{
    return !serial_number.empty() && serial_number.size() <= 32 &&
           std::all_of(serial_number.begin(), serial_number.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
           });
}

query_parse parse_iclock_query(std::string_view target)
{
    query_parse result;
    iclock_query query;
    auto question = target.find('?');
    query.path = std::string{target.substr(0, question)};
    std::string_view rest =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    if (auto hash = rest.find('#'); hash != std::string_view::npos) {
        rest = rest.substr(0, hash);
    }

    std::optional<std::string> serial_number;
    while (!rest.empty()) {
        auto amp = rest.find('&');
        std::string_view item = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (item.empty()) {
            continue;
        }
        auto eq = item.find('=');
        std::string key = decode_component(item.substr(0, eq));
        std::string value =
            eq == std::string_view::npos ? std::string{} : decode_component(item.substr(eq + 1));

        if (iequals(key, "SN")) {
            if (serial_number && *serial_number != value) {
                result.error.message = "SN given twice with different values";
                return result;
            }
            serial_number = std::move(value);
        } else if (auto* slot = known_slot(query, key); slot != nullptr && !slot->has_value()) {
            *slot = std::move(value);
        } else {
            query.extra.push_back({std::move(key), std::move(value)});
        }
    }

    if (!serial_number) {
        result.error.message = "missing SN";
        return result;
    }
    if (!is_valid_serial_number(*serial_number)) {
        result.error.message = "invalid SN (1 to 32 letters, digits, '-' or '_' expected)";
        return result;
    }
    query.serial_number = std::move(*serial_number);
    result.query = std::move(query);
    return result;
}

} // namespace adms::protocol
