#include "server/personnel/person_rules.hpp"

#include <boost/locale/utf.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace adms::server::personnel {
namespace {

// The limits, with why.
constexpr std::size_t max_pin = 24;     // the longest string PIN a terminal's user table holds
constexpr std::size_t max_name = 96;    // bytes: far above any terminal's field; devices report
                                        // what they cannot show (the planner's per-device check)
constexpr std::size_t max_card = 20;    // decimal digits of a 64-bit card number
constexpr std::size_t max_password = 8; // the terminals' keypad password field
constexpr std::size_t max_external_id = 256;
constexpr std::size_t max_area_code = 32;
constexpr std::size_t max_area_name = 96;

bool ascii_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool digits(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// C0 controls (TAB, CR, LF among them: the protocol's separators) and DEL.
bool has_control(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

std::optional<std::string> check_text(std::string_view s, std::size_t max, bool required)
{
    if (required && s.empty()) {
        return "must not be empty";
    }
    if (s.size() > max) {
        return fmt::format("must be at most {} bytes (got {})", max, s.size());
    }
    if (!is_utf8(s)) {
        return "must be UTF-8";
    }
    if (has_control(s)) {
        return "must not contain control characters (TAB, CR, LF, ...)";
    }
    return std::nullopt;
}

} // namespace

bool is_utf8(std::string_view text)
{
    using traits = boost::locale::utf::utf_traits<char>;
    const char* p = text.data();
    const char* end = text.data() + text.size();
    while (p != end) {
        auto c = traits::decode(p, end);
        if (c == boost::locale::utf::illegal || c == boost::locale::utf::incomplete) {
            return false;
        }
    }
    return true;
}

std::optional<std::string> check_pin(std::string_view pin)
{
    if (pin.empty() || pin.size() > max_pin || !std::all_of(pin.begin(), pin.end(), ascii_alnum)) {
        return fmt::format("must be 1 to {} ASCII letters or digits", max_pin);
    }
    return std::nullopt;
}

std::optional<std::string> check_name(std::string_view name)
{
    return check_text(name, max_name, false);
}

std::optional<std::string> check_card(std::string_view card)
{
    if (card.size() > max_card || !digits(card)) {
        return fmt::format("must be a decimal card number of at most {} digits (or empty)",
                           max_card);
    }
    return std::nullopt;
}

std::optional<std::string> check_privilege(long long privilege)
{
    switch (privilege) {
    case 0:
    case 2:
    case 6:
    case 10:
    case 14:
        return std::nullopt;
    default:
        return "must be 0 (user), 2 (enroller), 6 (administrator), 10 (custom role) or 14 "
               "(super administrator)";
    }
}

std::optional<std::string> check_password(std::string_view password)
{
    if (password.empty() || password.size() > max_password || !digits(password)) {
        return fmt::format("must be 1 to {} digits", max_password);
    }
    return std::nullopt;
}

std::optional<std::string> check_verify(long long verify)
{
    if (verify < -1 || verify > 255) {
        return "must be -1 (the device's group verify mode) or a verify mode 0 to 255";
    }
    return std::nullopt;
}

std::optional<std::string> check_external_id(std::string_view id)
{
    return check_text(id, max_external_id, false);
}

std::optional<std::string> check_area_code(std::string_view code)
{
    auto allowed = [](char c) { return ascii_alnum(c) || c == '-' || c == '_' || c == '.'; };
    if (code.empty() || code.size() > max_area_code ||
        !std::all_of(code.begin(), code.end(), allowed)) {
        return fmt::format("must be 1 to {} ASCII letters, digits, '-', '_' or '.'", max_area_code);
    }
    return std::nullopt;
}

std::optional<std::string> check_area_name(std::string_view name)
{
    return check_text(name, max_area_name, false);
}

std::optional<field_error> check_person(const person& p)
{
    auto first = [](std::string_view field,
                    std::optional<std::string> why) -> std::optional<field_error> {
        if (why) {
            return field_error{std::string{field}, std::move(*why)};
        }
        return std::nullopt;
    };
    for (auto e :
         {first("pin", check_pin(p.pin)), first("name", check_name(p.name)),
          first("card", check_card(p.card)), first("privilege", check_privilege(p.privilege)),
          first("password", p.password ? check_password(*p.password) : std::nullopt),
          first("verify", check_verify(p.verify)),
          first("external_id", check_external_id(p.external_id))}) {
        if (e) {
            return e;
        }
    }
    for (const auto& code : p.areas) {
        if (auto why = check_area_code(code)) {
            return field_error{"areas", fmt::format("'{}' {}", code, *why)};
        }
    }
    return std::nullopt;
}

} // namespace adms::server::personnel
