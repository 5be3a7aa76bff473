#include "server/http/json_input.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <limits>
#include <string>

using namespace adms::server;

namespace {

boost::json::object object_of(std::string_view body)
{
    auto parsed = parse_json_object(body, false);
    INFO(parsed.error.describe());
    REQUIRE(parsed);
    return *parsed.value;
}

std::string body_error(std::string_view body, bool allow_empty = false)
{
    auto parsed = parse_json_object(body, allow_empty);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error.field.empty());
    return parsed.error.describe();
}

} // namespace

TEST_CASE("An error names its field in quotes or stands alone for the body", "[json_input]")
{
    CHECK(input_error{"pin", "must be a string"}.describe() == "field 'pin': must be a string");
    CHECK(input_error{"", "body: must be a JSON object"}.describe() ==
          "body: must be a JSON object");
    CHECK(input_error{"a\nb", "unknown field"}.describe() == "field 'a?b': unknown field");
    CHECK(input_error{std::string(100, 'k'), "x"}.describe() ==
          "field '" + std::string(64, 'k') + "...': x");
}

TEST_CASE("A JSON object body parses into its members", "[json_input]")
{
    auto object = object_of(R"( {"command": "reboot", "n": 1, "nested": {"a": [1, 2]}} )");
    CHECK(object.size() == 3);
    CHECK(object.at("command") == "reboot");
    CHECK(object.at("n") == 1);
}

TEST_CASE("An empty body is an empty object only when allowed", "[json_input]")
{
    for (std::string body : {"", " ", "\r\n\t "}) {
        auto parsed = parse_json_object(body, true);
        REQUIRE(parsed);
        CHECK(parsed.value->empty());
        CHECK(body_error(body) == "body: empty; must be a JSON object");
    }
}

TEST_CASE("Malformed JSON is refused with the offset and Boost's reason", "[json_input]")
{
    // The offset is that of the offending byte (or the end, for incomplete JSON).
    CHECK(body_error(R"({"a": 1,})") == "body: malformed JSON at offset 8: syntax error");
    CHECK(body_error(R"({"a": )") == "body: malformed JSON at offset 6: incomplete JSON");
    CHECK(body_error(R"({"a": 1} x)") == "body: malformed JSON at offset 9: extra data");
    CHECK(body_error("{'a': 1}") == "body: malformed JSON at offset 1: syntax error");
    CHECK(body_error("{\"a\": \"\xff\"}") == "body: malformed JSON at offset 7: syntax error");
    CHECK(body_error("{\"a\": 1} // note").rfind("body: malformed JSON at offset 9: ", 0) == 0);
}

TEST_CASE("A body that is not an object is refused", "[json_input]")
{
    for (std::string body : {"[1, 2]", "\"reboot\"", "42", "null", "true", "[]"}) {
        INFO(body);
        CHECK(body_error(body) == "body: must be a JSON object");
        CHECK(body_error(body, true) == "body: must be a JSON object");
    }
}

TEST_CASE("Nesting deeper than 32 is refused", "[json_input]")
{
    auto nested = [](int depth) {
        std::string body = "{\"a\":";
        for (int i = 1; i < depth; ++i) {
            body += '[';
        }
        body += '1';
        body += std::string(static_cast<std::size_t>(depth - 1), ']');
        return body + '}';
    };
    CHECK(parse_json_object(nested(32), false));
    // The 33rd level opens at offset 36: 5 bytes of {"a": and 31 brackets before it.
    auto error = body_error(nested(33));
    CHECK(error == "body: malformed JSON at offset 36: too deep");
}

TEST_CASE("Duplicate keys keep the last value", "[json_input]")
{
    auto object = object_of(R"({"a": 1, "a": 2})");
    CHECK(object.size() == 1);
    CHECK(object.at("a") == 2);
}

TEST_CASE("The first unknown field is named with the expected ones", "[json_input]")
{
    auto object = object_of(R"({"command": "x", "pin": "1", "colour": "red", "size": 2})");
    CHECK_FALSE(reject_unknown_fields(object, {"command", "pin", "colour", "size"}));
    auto error = reject_unknown_fields(object, {"command", "pin"});
    REQUIRE(error);
    CHECK(error->field == "colour");
    CHECK(error->describe() == "field 'colour': unknown field; expected one of command, pin");
    CHECK(reject_unknown_fields(object, {"command"})->message == "unknown field; expected command");
    CHECK(reject_unknown_fields(object, {})->message == "unknown field; expected no fields");
    CHECK_FALSE(reject_unknown_fields(boost::json::object{}, {}));
}

TEST_CASE("String fields read strings and refuse other types", "[json_input]")
{
    auto object = object_of(R"({"s": "h\u00e9", "e": "", "n": null, "i": 1, "b": true,
                                "a": ["x"], "o": {}})");
    auto s = optional_string(object, "s");
    REQUIRE(s);
    CHECK(*s.value == std::optional<std::string>{"h\xc3\xa9"});
    CHECK(*optional_string(object, "e").value == std::optional<std::string>{""});
    CHECK(*optional_string(object, "absent").value == std::nullopt);
    CHECK(*optional_string(object, "n").value == std::nullopt);
    for (auto field : {"i", "b", "a", "o"}) {
        auto read = optional_string(object, field);
        REQUIRE_FALSE(read);
        CHECK(read.error.field == field);
        CHECK(read.error.message == "must be a string");
    }
}

TEST_CASE("Integer fields take JSON integers within int64 only", "[json_input]")
{
    auto object = object_of(R"({"i": -42, "z": -0, "max": 9223372036854775807,
        "min": -9223372036854775808, "big": 9223372036854775808, "huge": 18446744073709551616,
        "half": 1.5, "two": 2.0, "exp": 1e3, "s": "7", "b": false, "n": null})");
    CHECK(*optional_integer(object, "i").value == std::optional<std::int64_t>{-42});
    CHECK(*optional_integer(object, "z").value == std::optional<std::int64_t>{0});
    CHECK(*optional_integer(object, "max").value ==
          std::optional<std::int64_t>{9223372036854775807LL});
    CHECK(*optional_integer(object, "min").value ==
          std::optional<std::int64_t>{std::numeric_limits<std::int64_t>::min()});
    CHECK(*optional_integer(object, "absent").value == std::nullopt);
    CHECK(*optional_integer(object, "n").value == std::nullopt);
    auto big = optional_integer(object, "big");
    REQUIRE_FALSE(big);
    CHECK(big.error.describe() ==
          "field 'big': must be an integer from -9223372036854775808 to 9223372036854775807");
    for (auto field : {"huge", "half", "two", "exp", "s", "b"}) {
        INFO(field);
        auto read = optional_integer(object, field);
        REQUIRE_FALSE(read);
        CHECK(read.error.field == field);
        CHECK(read.error.message == "must be an integer");
    }
}

TEST_CASE("Boolean fields take true or false only", "[json_input]")
{
    auto object = object_of(R"({"t": true, "f": false, "n": null, "one": 1, "s": "true"})");
    CHECK(*optional_bool(object, "t").value == std::optional<bool>{true});
    CHECK(*optional_bool(object, "f").value == std::optional<bool>{false});
    CHECK(*optional_bool(object, "n").value == std::nullopt);
    CHECK(*optional_bool(object, "absent").value == std::nullopt);
    for (auto field : {"one", "s"}) {
        auto read = optional_bool(object, field);
        REQUIRE_FALSE(read);
        CHECK(read.error.describe() == fmt::format("field '{}': must be true or false", field));
    }
}

TEST_CASE("An error body is a JSON object with success false and the description", "[json_input]")
{
    CHECK(error_body({"pin", "must be a string"}) ==
          R"({"success":false,"error":"field 'pin': must be a string"})");
    CHECK(error_body({"", "body: say \"hi\"\\"}) ==
          R"({"success":false,"error":"body: say \"hi\"\\"})");
    auto parsed = boost::json::parse(error_body({"", "tab\there"}));
    CHECK(parsed.at("error") == "tab\there");
    CHECK(parsed.at("success") == false);
}
