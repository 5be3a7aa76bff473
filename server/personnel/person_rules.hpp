#pragma once

// What the directory accepts in a person and an area, wherever it comes from (API, CSV, LDAP):
// one home for the rules, so a value the API refuses is refused by an import too. Pure.
// Per-device limits (digits-only PINs, the PIN width, the 24-byte name field) are the planner's:
// a valid person may still not fit a given terminal, which is reported per device.

#include "server/personnel/person.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace adms::server::personnel {

// A refused field: its name (as in the API and the CSV header) and why.
struct field_error {
    std::string field;
    std::string message;
    friend bool operator==(const field_error&, const field_error&) = default;
};

// Each check answers nullopt when the value is acceptable, else why not (a sentence fragment
// starting with "must": "must be 1 to 24 ASCII letters or digits").
std::optional<std::string> check_pin(std::string_view pin);
std::optional<std::string> check_name(std::string_view name);
std::optional<std::string> check_card(std::string_view card);
std::optional<std::string> check_privilege(long long privilege);
std::optional<std::string> check_password(std::string_view password);
std::optional<std::string> check_verify(long long verify);
std::optional<std::string> check_external_id(std::string_view id);
std::optional<std::string> check_area_code(std::string_view code);
std::optional<std::string> check_area_name(std::string_view name);

// The first field of `p` a check refuses (areas: each code's format, not whether it exists).
std::optional<field_error> check_person(const person& p);

// Whether `text` is valid UTF-8 (Boost.Locale's decoder; overlong forms and surrogates refused).
bool is_utf8(std::string_view text);

} // namespace adms::server::personnel
