#include "protocol/options_body.hpp"

#include "protocol/text.hpp"

#include <string>

namespace adms::protocol {

parse_result<key_value> parse_options_body(std::string_view body)
{
    parse_result<key_value> result;
    std::vector<std::string_view> items;
    text::line_reader lines{body};
    while (auto line = lines.next()) {
        if (text::is_blank(line->text)) {
            continue;
        }
        text::split_into(line->text, ',', items);
        for (auto item : items) {
            if (text::is_blank(item)) {
                continue;
            }
            auto equals = item.find('=');
            if (equals == std::string_view::npos) {
                result.rejected.push_back(
                    {line->number, std::string{item}, "item without '=' " + text::quote(item)});
                continue;
            }
            auto key = text::trim_spaces(item.substr(0, equals));
            if (key.empty()) {
                result.rejected.push_back(
                    {line->number, std::string{item}, "empty key " + text::quote(item)});
                continue;
            }
            if (text::has_control_byte(key)) {
                result.rejected.push_back({line->number, std::string{item},
                                           "key has control characters " + text::quote(key)});
                continue;
            }
            result.records.push_back({std::string{key}, std::string{item.substr(equals + 1)}});
        }
    }
    return result;
}

} // namespace adms::protocol
