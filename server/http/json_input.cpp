#include "server/http/json_input.hpp"

#include "protocol/text.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace adms::server {
namespace {

constexpr std::size_t max_json_depth = 32;

input_error wrong_type(std::string_view field, std::string_view expected)
{
    return {std::string{field}, std::string{expected}};
}

} // namespace

std::string input_error::describe() const
{
    if (field.empty()) {
        return message;
    }
    return fmt::format("field {}: {}", protocol::text::quote(field, 64), message);
}

input_result<boost::json::object> parse_json_object(std::string_view body, bool allow_empty)
{
    // JSON's own whitespace (RFC 8259): space, TAB, LF, CR.
    if (body.find_first_not_of(" \t\n\r") == std::string_view::npos) {
        if (allow_empty) {
            return boost::json::object{};
        }
        return input_error{"", "body: empty; must be a JSON object"};
    }
    boost::json::parse_options options;
    options.max_depth = max_json_depth;
    boost::json::parser parser({}, options);
    boost::system::error_code error;
    // On failure, write() returns how many bytes it consumed: the offset of the error.
    std::size_t offset = parser.write(body.data(), body.size(), error);
    if (error) {
        return input_error{
            "", fmt::format("body: malformed JSON at offset {}: {}", offset, error.message())};
    }
    boost::json::value value = parser.release();
    if (!value.is_object()) {
        return input_error{"", "body: must be a JSON object"};
    }
    return std::move(value.as_object());
}

std::optional<input_error> reject_unknown_fields(const boost::json::object& object,
                                                 std::initializer_list<std::string_view> known)
{
    for (const auto& member : object) {
        std::string_view key = member.key();
        if (std::find(known.begin(), known.end(), key) != known.end()) {
            continue;
        }
        std::string expected;
        if (known.size() == 0) {
            expected = "no fields";
        } else if (known.size() == 1) {
            expected = std::string{*known.begin()};
        } else {
            expected = "one of ";
            for (auto name = known.begin(); name != known.end(); ++name) {
                expected += name == known.begin() ? "" : ", ";
                expected += *name;
            }
        }
        return input_error{std::string{key}, "unknown field; expected " + expected};
    }
    return std::nullopt;
}

std::optional<input_error> reject_unknown_params(const query_params& params,
                                                 const std::vector<std::string_view>& known)
{
    for (const auto& [key, value] : params) {
        if (std::find(known.begin(), known.end(), key) != known.end()) {
            continue;
        }
        std::string list;
        for (auto k : known) {
            list += (list.empty() ? "" : ", ") + std::string{k};
        }
        return input_error{key, "unknown query parameter; expected " +
                                    (list.empty() ? std::string{"none"} : list)};
    }
    return std::nullopt;
}

input_result<std::optional<std::string>> optional_string(const boost::json::object& object,
                                                         std::string_view field)
{
    const boost::json::value* value = object.if_contains(field);
    if (value == nullptr || value->is_null()) {
        return std::optional<std::string>{};
    }
    if (!value->is_string()) {
        return wrong_type(field, "must be a string");
    }
    const auto& string = value->get_string();
    return std::optional<std::string>{std::string{string.data(), string.size()}};
}

input_result<std::optional<std::int64_t>> optional_integer(const boost::json::object& object,
                                                           std::string_view field)
{
    const boost::json::value* value = object.if_contains(field);
    if (value == nullptr || value->is_null()) {
        return std::optional<std::int64_t>{};
    }
    if (value->is_int64()) {
        return std::optional<std::int64_t>{value->get_int64()};
    }
    if (value->is_uint64()) {
        if (value->get_uint64() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return wrong_type(field, "must be an integer from -9223372036854775808 to "
                                     "9223372036854775807");
        }
        return std::optional<std::int64_t>{static_cast<std::int64_t>(value->get_uint64())};
    }
    return wrong_type(field, "must be an integer");
}

input_result<std::optional<bool>> optional_bool(const boost::json::object& object,
                                                std::string_view field)
{
    const boost::json::value* value = object.if_contains(field);
    if (value == nullptr || value->is_null()) {
        return std::optional<bool>{};
    }
    if (!value->is_bool()) {
        return wrong_type(field, "must be true or false");
    }
    return std::optional<bool>{value->get_bool()};
}

input_result<std::optional<std::vector<std::string>>>
optional_strings(const boost::json::object& object, std::string_view field)
{
    const boost::json::value* value = object.if_contains(field);
    if (value == nullptr || value->is_null()) {
        return std::optional<std::vector<std::string>>{};
    }
    if (!value->is_array()) {
        return wrong_type(field, "must be a list of strings");
    }
    std::vector<std::string> out;
    for (const auto& item : value->get_array()) {
        if (!item.is_string()) {
            return wrong_type(field, "must be a list of strings");
        }
        out.emplace_back(item.get_string());
    }
    return std::optional<std::vector<std::string>>{std::move(out)};
}

std::string error_body(const input_error& error)
{
    boost::json::object body;
    body["success"] = false;
    body["error"] = error.describe();
    return boost::json::serialize(body);
}

} // namespace adms::server
