#pragma once

// The people directory's vocabulary (issue 17, docs/personnel.md): who may punch, in which areas.
// Pure data; every source (API, CSV, LDAP, devices) produces these and the planner reads them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server::personnel {

enum class person_status { active, left };
enum class person_source { api, csv, ldap, device };

// The names stored and shown in the API ("active", "left"; "api", "csv", "ldap", "device").
constexpr std::string_view to_string(person_status s)
{
    return s == person_status::active ? "active" : "left";
}
constexpr std::string_view to_string(person_source s)
{
    switch (s) {
    case person_source::api:
        return "api";
    case person_source::csv:
        return "csv";
    case person_source::ldap:
        return "ldap";
    case person_source::device:
        return "device";
    }
    return "api";
}
constexpr std::optional<person_status> parse_person_status(std::string_view s)
{
    if (s == "active") {
        return person_status::active;
    }
    if (s == "left") {
        return person_status::left;
    }
    return std::nullopt;
}
constexpr std::optional<person_source> parse_person_source(std::string_view s)
{
    for (auto v :
         {person_source::api, person_source::csv, person_source::ldap, person_source::device}) {
        if (to_string(v) == s) {
            return v;
        }
    }
    return std::nullopt;
}

// A person as the directory wants every terminal of their areas to know them.
struct person {
    std::string pin;   // the device user id; validated per target device (protocol/user_records)
    std::string name;  // UTF-8
    std::string card;  // decimal card number as entered; empty: none
    int privilege = 0; // 0 user, 2 enroller, 6 administrator, 14 super administrator
    // Write-only through the API; nullopt: the person has no password.
    std::optional<std::string> password;
    int verify = -1; // verify mode; -1: the device's group mode
    person_status status = person_status::active;
    person_source source = person_source::api;
    std::string external_id;        // the source's key (LDAP entryUUID/objectGUID, HR id)
    std::vector<std::string> areas; // area codes, sorted, no duplicates
    friend bool operator==(const person&, const person&) = default;
};

// An area: a set of terminals (each device belongs to at most one) whose people are the persons
// listing its code.
struct area {
    std::string code; // as in the API: letters, digits, '-', '_', '.'; at most 32 bytes
    std::string name;
    friend bool operator==(const area&, const area&) = default;
};

} // namespace adms::server::personnel
