#include "server/admin/command_request.hpp"

#include "protocol/admin_command.hpp"
#include "protocol/civil_time.hpp"
#include "protocol/text.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <chrono>
#include <optional>

namespace adms::server {
namespace {

constexpr std::string_view command_names = "reboot, info, check, log, clear_log, user_upsert, "
                                           "user_delete, query_attlog, set_option";

// The request for a built command, or the builder's error on the same field.
input_result<command_request> from_built(std::string_view name, protocol::built_command built)
{
    if (!built) {
        return input_error{std::move(built.error.field), std::move(built.error.message)};
    }
    return command_request{std::string{name}, std::move(*built.text)};
}

// A field that may be a JSON string or integer (PIN, card, option value), as a string.
input_result<std::optional<std::string>> string_or_integer(const boost::json::object& body,
                                                           std::string_view field)
{
    const boost::json::value* value = body.if_contains(field);
    if (value == nullptr || value->is_null()) {
        return std::optional<std::string>{};
    }
    if (value->is_string()) {
        return std::optional<std::string>{std::string{value->get_string()}};
    }
    if (value->is_int64()) {
        return std::optional<std::string>{std::to_string(value->get_int64())};
    }
    if (value->is_uint64()) {
        return std::optional<std::string>{std::to_string(value->get_uint64())};
    }
    return input_error{std::string{field}, "must be a string or an integer"};
}

input_error missing(std::string_view field)
{
    return {std::string{field}, "required"};
}

// A device wall-clock time; a bare date is the start (from) or the end (to) of that day.
input_result<std::chrono::local_seconds> device_time(std::string_view field, std::string_view text,
                                                     bool end_of_day)
{
    std::optional<std::chrono::local_seconds> time;
    if (text.size() == 10) {
        time = protocol::parse_civil_time(std::string{text} +
                                          (end_of_day ? " 23:59:59" : " 00:00:00"));
    } else if (text.size() == 19) {
        time = protocol::parse_civil_time(text);
    }
    if (time) {
        return *time;
    }
    // Why not convert: the device stores and compares its own local wall-clock times, and the
    // server would need the device's zone to place a UTC instant there. Say so instead.
    if (text.size() > 10 && (text.back() == 'Z' || text.back() == 'z' ||
                             text.find_first_of("+-", 10) != std::string_view::npos)) {
        return input_error{std::string{field},
                           "must be the device's wall-clock time without 'Z' or a UTC offset "
                           "(the device clock is local), e.g. \"2024-03-01 08:00:00\""};
    }
    return input_error{std::string{field},
                       "must be \"YYYY-MM-DD HH:MM:SS\", \"YYYY-MM-DDTHH:MM:SS\" or "
                       "\"YYYY-MM-DD\" (device wall-clock time)"};
}

input_result<command_request> user_upsert(const boost::json::object& body)
{
    if (auto error = reject_unknown_fields(
            body, {"command", "pin", "name", "privilege", "password", "card", "group", "verify"})) {
        return *error;
    }
    auto pin = string_or_integer(body, "pin");
    auto name = optional_string(body, "name");
    auto privilege = optional_integer(body, "privilege");
    auto password = optional_string(body, "password");
    auto card = string_or_integer(body, "card");
    auto group = optional_integer(body, "group");
    auto verify = optional_integer(body, "verify");
    for (const input_error* error : {&pin.error, &name.error, &privilege.error, &password.error,
                                     &card.error, &group.error, &verify.error}) {
        if (!error->message.empty()) {
            return *error;
        }
    }
    if (!*pin.value) {
        return missing("pin");
    }
    protocol::user_fields user{.pin = **pin.value,
                               .name = *name.value,
                               .privilege = *privilege.value,
                               .password = *password.value,
                               .card = *card.value,
                               .group = *group.value,
                               .verify = *verify.value};
    return from_built("user_upsert", protocol::user_upsert_command(user));
}

input_result<command_request> user_delete(const boost::json::object& body)
{
    if (auto error = reject_unknown_fields(body, {"command", "pin"})) {
        return *error;
    }
    auto pin = string_or_integer(body, "pin");
    if (!pin) {
        return pin.error;
    }
    if (!*pin.value) {
        return missing("pin");
    }
    return from_built("user_delete", protocol::user_delete_command(**pin.value));
}

input_result<command_request> query_attlog(const boost::json::object& body)
{
    if (auto error = reject_unknown_fields(body, {"command", "from", "to"})) {
        return *error;
    }
    std::optional<std::chrono::local_seconds> bounds[2];
    for (bool end : {false, true}) {
        std::string_view field = end ? "to" : "from";
        auto text = optional_string(body, field);
        if (!text) {
            return text.error;
        }
        if (!*text.value) {
            return missing(field);
        }
        auto time = device_time(field, **text.value, end);
        if (!time) {
            return time.error;
        }
        bounds[end ? 1 : 0] = *time.value;
    }
    return from_built("query_attlog", protocol::query_attlog_command(*bounds[0], *bounds[1]));
}

input_result<command_request> set_option(const boost::json::object& body)
{
    if (auto error = reject_unknown_fields(body, {"command", "name", "value"})) {
        return *error;
    }
    auto name = optional_string(body, "name");
    if (!name) {
        return name.error;
    }
    auto value = string_or_integer(body, "value");
    if (!value) {
        return value.error;
    }
    if (!*name.value) {
        return missing("name");
    }
    if (!*value.value) {
        return missing("value");
    }
    return from_built("set_option", protocol::set_option_command(**name.value, **value.value));
}

} // namespace

input_result<command_request> parse_command_request(const boost::json::object& body)
{
    auto command = optional_string(body, "command");
    if (!command) {
        return command.error;
    }
    if (!*command.value) {
        return input_error{"command", fmt::format("required; one of {}", command_names)};
    }
    const std::string& name = **command.value;

    // The commands without arguments.
    using builder = protocol::built_command (*)();
    struct simple_command {
        std::string_view name;
        builder build;
    };
    static constexpr simple_command simple[] = {
        {"reboot", protocol::reboot_command},       {"info", protocol::info_command},
        {"check", protocol::check_command},         {"log", protocol::log_command},
        {"clear_log", protocol::clear_log_command},
    };
    for (const auto& candidate : simple) {
        if (name == candidate.name) {
            if (auto error = reject_unknown_fields(body, {"command"})) {
                return *error;
            }
            return from_built(candidate.name, candidate.build());
        }
    }
    if (name == "user_upsert") {
        return user_upsert(body);
    }
    if (name == "user_delete") {
        return user_delete(body);
    }
    if (name == "query_attlog") {
        return query_attlog(body);
    }
    if (name == "set_option") {
        return set_option(body);
    }
    return input_error{"command", fmt::format("unknown command {}; one of {}",
                                              protocol::text::quote(name), command_names)};
}

} // namespace adms::server
