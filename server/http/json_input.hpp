#pragma once

// Reading JSON API request bodies and query parameters with precise errors: which field, and
// why.

#include "server/http/message.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adms::server {

// Why a request body or parameter was refused: the field (empty for the body as a whole) and why.
struct input_error {
    std::string field;
    std::string message;

    // "field 'pin': must be 1 to 24 ASCII letters or digits", or the message alone when `field`
    // is empty. The field name is quoted, cut to 64 bytes and shown as printable ASCII.
    std::string describe() const;
};

// A value read from a request, or the error that refused it.
template <class T>
struct input_result {
    std::optional<T> value;
    input_error error;

    // A successful read.
    input_result(T read) : value(std::move(read)) {}

    // A refused read.
    input_result(input_error refused) : error(std::move(refused)) {}

    // True when `value` holds the read value.
    explicit operator bool() const { return value.has_value(); }
};

// Parses a body that must be one JSON object, nested at most 32 deep. When `allow_empty`, an
// empty or all-whitespace body reads as an empty object. Duplicate keys: the last one wins.
input_result<boost::json::object> parse_json_object(std::string_view body, bool allow_empty);

// The first field of `object` not in `known`, as an error naming it and the expected fields.
std::optional<input_error> reject_unknown_fields(const boost::json::object& object,
                                                 std::initializer_list<std::string_view> known);

// The first query parameter whose name is not in `known`, as an error naming it and the
// expected parameters.
std::optional<input_error> reject_unknown_params(const query_params& params,
                                                 const std::vector<std::string_view>& known);

// Rules shared by the typed reads below: an absent field and a JSON null both read as nullopt;
// a present field of the wrong type is an error naming the field and the expected type.

// A string field ("must be a string").
input_result<std::optional<std::string>> optional_string(const boost::json::object& object,
                                                         std::string_view field);

// An integer field: a JSON integer within int64 ("must be an integer"). Numbers with a fraction
// or an exponent (1.5, 2.0, 1e3) are refused: they parse as doubles, which are not exact beyond
// 2^53, and they are a client bug in a field that holds a count or an id.
input_result<std::optional<std::int64_t>> optional_integer(const boost::json::object& object,
                                                           std::string_view field);

// A boolean field ("must be true or false").
input_result<std::optional<bool>> optional_bool(const boost::json::object& object,
                                                std::string_view field);

// A list of strings ("must be a list of strings").
input_result<std::optional<std::vector<std::string>>>
optional_strings(const boost::json::object& object, std::string_view field);

// The body of an error reply: {"success":false,"error":"<describe()>"}, escaped by Boost.JSON.
std::string error_body(const input_error& error);

} // namespace adms::server
