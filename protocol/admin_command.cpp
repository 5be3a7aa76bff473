#include "protocol/admin_command.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/command.hpp"
#include "protocol/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>

namespace adms::protocol {
namespace {

// Rules, with why (reference §1.2 and §3; ZKTeco's PUSH documents and field reports):
// - PIN: 1 to 24 ASCII letters or digits, sent byte for byte. 24 is the longest user ID push
//   firmware stores; factory settings take digits only, up to 9, but longer and alphanumeric IDs
//   are a device setting, so the device (not the server) answers -1 when it does not take one.
//   Leading zeros are kept: "007" and "7" are different users.
// - Name: at most 24 bytes of UTF-8 without control bytes. 24 bytes is the name field of the
//   USERINFO record; a longer name is cut silently, possibly inside a UTF-8 character. A TAB
//   would start a new field, CR/LF a new command.
// - Privilege: exactly 0, 2, 6 or 14, the push protocol's levels. Other values are not levels
//   there (0..3 is the standalone SDK's scale, where 3 means super admin): reject, never guess.
// - Password: empty (clears it) or 1 to 8 digits: the keypad takes digits, 8 at most.
// - Card: empty (clears it) or 1 to 10 digits up to 4294967295: attendance firmware keeps a
//   32-bit card number, and a larger one truncated would be another person's card.
// - Group: 1 to 99, the device's group numbers (1 is the default group).
// - Verify: -1 (use the group's mode) or 0 to 255; the mode tables differ between models, so
//   only the byte range is checked and the device answers -1 for a mode it lacks.
// - Option name: 1 to 64 of [A-Za-z0-9_~] (~ starts read-only names such as ~DeviceName);
//   DateTime is refused because the time-sync API sets the clock and knows the device's zone.
// - Option value: at most 256 bytes of UTF-8 without control bytes; empty is allowed.
constexpr std::size_t max_pin_chars = 24;
constexpr std::size_t max_name_bytes = 24;
constexpr std::size_t max_password_digits = 8;
constexpr std::size_t max_card_digits = 10;
constexpr std::uint64_t max_card_number = 4294967295U;
constexpr std::size_t max_option_name_chars = 64;
constexpr std::size_t max_option_value_bytes = 256;

built_command fail(std::string field, std::string message)
{
    return {std::nullopt, {std::move(field), std::move(message)}};
}

// Every builder ends here: the text must still be a sendable command.
built_command done(std::string text)
{
    if (!is_valid_command_text(text)) {
        return fail("", "internal error: the built command is not sendable");
    }
    return {std::move(text), {}};
}

bool is_ascii_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// True for well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text)
{
    std::size_t i = 0;
    while (i < text.size()) {
        auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t code = 0;
        if (lead < 0x80) {
            ++i;
            continue;
        } else if ((lead & 0xe0) == 0xc0) {
            length = 2;
            code = lead & 0x1f;
        } else if ((lead & 0xf0) == 0xe0) {
            length = 3;
            code = lead & 0x0f;
        } else if ((lead & 0xf8) == 0xf0) {
            length = 4;
            code = lead & 0x07;
        } else {
            return false;
        }
        if (i + length > text.size()) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            auto byte = static_cast<unsigned char>(text[i + k]);
            if ((byte & 0xc0) != 0x80) {
                return false;
            }
            code = (code << 6) | (byte & 0x3f);
        }
        constexpr std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < least[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
            return false;
        }
        i += length;
    }
    return true;
}

std::optional<command_error> check_pin(std::string_view pin)
{
    if (pin.empty() || pin.size() > max_pin_chars ||
        !std::all_of(pin.begin(), pin.end(), is_ascii_alnum)) {
        return command_error{"pin", "must be 1 to 24 ASCII letters or digits"};
    }
    return std::nullopt;
}

// A free-text value (user name, option value): UTF-8, no control bytes, at most `limit` bytes.
std::optional<command_error> check_text(std::string_view field, std::string_view value,
                                        std::size_t limit)
{
    if (text::has_control_byte(value)) {
        return command_error{std::string{field},
                             "must not contain control characters (TAB, CR, LF, NUL, ...)"};
    }
    if (!is_valid_utf8(value)) {
        return command_error{std::string{field}, "must be valid UTF-8"};
    }
    if (value.size() > limit) {
        return command_error{std::string{field},
                             fmt::format("must be at most {} bytes, got {}", limit, value.size())};
    }
    return std::nullopt;
}

bool is_option_name_char(char c)
{
    return is_ascii_alnum(c) || c == '_' || c == '~';
}

bool equals_ignoring_case(std::string_view a, std::string_view b)
{
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

std::optional<command_error> check_query_time(std::string_view field,
                                              std::chrono::local_seconds time)
{
    using namespace std::chrono;
    constexpr auto first = local_days{year{2000} / January / 1};
    constexpr auto last =
        local_days{year{9999} / December / 31} + hours{23} + minutes{59} + seconds{59};
    if (time < first || time > last) {
        return command_error{std::string{field},
                             "must be between 2000-01-01 00:00:00 and 9999-12-31 23:59:59"};
    }
    return std::nullopt;
}

} // namespace

built_command reboot_command()
{
    return done("REBOOT");
}

built_command info_command()
{
    return done("INFO");
}

built_command check_command()
{
    return done("CHECK");
}

built_command log_command()
{
    return done("LOG");
}

built_command clear_log_command()
{
    return done("CLEAR LOG");
}

built_command user_upsert_command(const user_fields& user)
{
    if (auto error = check_pin(user.pin)) {
        return {std::nullopt, std::move(*error)};
    }
    std::string_view name = user.name ? std::string_view{*user.name} : std::string_view{};
    if (auto error = check_text("name", name, max_name_bytes)) {
        return {std::nullopt, std::move(*error)};
    }
    auto privilege = user.privilege.value_or(0);
    if (privilege != 0 && privilege != 2 && privilege != 6 && privilege != 14) {
        return fail("privilege", "must be 0 (user), 2 (enroller), 6 (admin) or 14 (super admin)");
    }
    if (user.password && (user.password->size() > max_password_digits ||
                          (!user.password->empty() && !text::is_all_digits(*user.password)))) {
        return fail("password", "must be empty or 1 to 8 digits");
    }
    if (user.card && !user.card->empty()) {
        auto number = text::parse_integer<std::uint64_t>(*user.card);
        if (!text::is_all_digits(*user.card) || user.card->size() > max_card_digits || !number ||
            *number > max_card_number) {
            return fail("card", "must be empty or 1 to 10 digits up to 4294967295");
        }
    }
    if (user.group && (*user.group < 1 || *user.group > 99)) {
        return fail("group", "must be 1 to 99");
    }
    if (user.verify && (*user.verify < -1 || *user.verify > 255)) {
        return fail("verify", "must be -1 (the group's mode) or 0 to 255");
    }

    std::string text =
        fmt::format("DATA UPDATE USERINFO PIN={}\tName={}\tPri={}", user.pin, name, privilege);
    if (user.password) {
        text += fmt::format("\tPasswd={}", *user.password);
    }
    if (user.card) {
        text += fmt::format("\tCard={}", *user.card);
    }
    if (user.group) {
        text += fmt::format("\tGrp={}", *user.group);
    }
    if (user.verify) {
        text += fmt::format("\tVerify={}", *user.verify);
    }
    return done(std::move(text));
}

built_command user_delete_command(std::string_view pin)
{
    if (auto error = check_pin(pin)) {
        return {std::nullopt, std::move(*error)};
    }
    return done(fmt::format("DATA DELETE USERINFO PIN={}", pin));
}

built_command query_attlog_command(std::chrono::local_seconds from, std::chrono::local_seconds to)
{
    if (auto error = check_query_time("from", from)) {
        return {std::nullopt, std::move(*error)};
    }
    if (auto error = check_query_time("to", to)) {
        return {std::nullopt, std::move(*error)};
    }
    if (from > to) {
        return fail("to", "must not be before 'from'");
    }
    return done(fmt::format("DATA QUERY ATTLOG StartTime={}\tEndTime={}", format_civil_time(from),
                            format_civil_time(to)));
}

built_command set_option_command(std::string_view name, std::string_view value)
{
    if (name.empty() || name.size() > max_option_name_chars ||
        !std::all_of(name.begin(), name.end(), is_option_name_char)) {
        return fail("name", "must be 1 to 64 of A-Z, a-z, 0-9, '_' and '~'");
    }
    if (equals_ignoring_case(name, "DateTime")) {
        return fail("name", "DateTime is set by the time-sync API, which knows the device's zone");
    }
    if (auto error = check_text("value", value, max_option_value_bytes)) {
        return {std::nullopt, std::move(*error)};
    }
    return done(fmt::format("SET OPTION {}={}", name, value));
}

} // namespace adms::protocol
