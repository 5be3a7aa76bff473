// libFuzzer target: what the webhook side reads from outside. The whole input is read as a
// receiver's Retry-After header (webhooks/retry_after), an endpoint URL (webhooks/webhook_url),
// an address for the SSRF rules (webhooks/address_policy), the webhook_allow_networks setting
// (security/access_control's network_list) and a signing secret (webhooks/signature). Split at
// its first newline, it is also an allow-list and a URL checked under it.

#include "server/security/access_control.hpp"
#include "server/webhooks/address_policy.hpp"
#include "server/webhooks/retry_after.hpp"
#include "server/webhooks/signature.hpp"
#include "server/webhooks/webhook_url.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <chrono>

using adms::server::network_list;
using namespace adms::server::webhooks;
using namespace std::chrono;

namespace {

// An error text is one short line of printable ASCII, whatever the input held.
void check_error_text(const std::string& error)
{
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(error.size() <= 600);
    FUZZ_CHECK(adms::fuzz::is_printable_ascii(error));
}

void check_retry_after(std::string_view text)
{
    for (auto now : {sys_seconds{sys_days{year{2026} / 11 / 21}}, sys_seconds{seconds{0}},
                     sys_seconds{sys_days{year{9999} / 12 / 31}}}) {
        auto wait = parse_retry_after(text, now);
        if (!wait) {
            continue;
        }
        FUZZ_CHECK(*wait >= seconds{0} && *wait <= max_retry_after);
        auto digits = adms::protocol::text::trim_spaces(text);
        if (adms::protocol::text::is_all_digits(digits) && digits.size() <= 9) {
            auto value = *adms::protocol::text::parse_integer<int>(digits);
            FUZZ_CHECK(*wait == std::min(seconds{value}, max_retry_after));
        }
    }
}

// The default-deny rules hold for any allow-list: public addresses always pass, nothing passes
// an empty list but public addresses, and a listed address passes.
void check_address_rules(std::string_view address, const network_list& allow)
{
    auto kind = classify_address(address);
    auto check = check_address(address, allow);
    FUZZ_CHECK(check.allowed == check.error.empty());
    if (!check.allowed) {
        check_error_text(check.error);
    }
    if (kind == address_kind::invalid) {
        FUZZ_CHECK(!check.allowed);
        return;
    }
    FUZZ_CHECK(!describe(kind).empty());
    if (kind == address_kind::global) {
        FUZZ_CHECK(check.allowed);
    } else if (allow.empty()) {
        FUZZ_CHECK(!check.allowed);
    } else if (allow.contains(address)) {
        FUZZ_CHECK(check.allowed);
    }
}

// An accepted URL is exactly what the client can send: http(s), a port, an origin-form target
// without spaces or a fragment, and a host that is either an address the rules allow or a plain
// DNS name that does not end in a number.
void check_url(std::string_view text, const network_list& allow)
{
    auto checked = check_webhook_url(text, allow);
    if (!checked.value) {
        check_error_text(checked.error);
        return;
    }
    FUZZ_CHECK(checked.error.empty());
    const auto& target = *checked.value;
    FUZZ_CHECK(target.scheme == "http" || target.scheme == "https");
    FUZZ_CHECK(target.is_tls == (target.scheme == "https"));
    FUZZ_CHECK(target.port != 0);
    FUZZ_CHECK(!target.target.empty() && target.target.front() == '/');
    FUZZ_CHECK(target.target.find_first_of(" #\r\n") == std::string::npos);
    FUZZ_CHECK(adms::fuzz::is_printable_ascii(target.target));
    FUZZ_CHECK(!target.host.empty());
    if (target.host_is_address) {
        FUZZ_CHECK(classify_address(target.host) != address_kind::invalid);
        FUZZ_CHECK(check_address(target.host, allow).allowed);
        return;
    }
    FUZZ_CHECK(target.host.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") ==
               std::string::npos);
    auto name = std::string_view{target.host};
    if (name.ends_with('.')) {
        name.remove_suffix(1);
    }
    FUZZ_CHECK(!adms::protocol::text::is_all_digits(name.substr(name.rfind('.') + 1)));
}

void check_secret(std::string_view text)
{
    auto secret = decode_secret(text);
    if (!secret.bytes) {
        check_error_text(secret.error);
        return;
    }
    FUZZ_CHECK(secret.error.empty());
    FUZZ_CHECK(secret.bytes->size() >= min_secret_bytes &&
               secret.bytes->size() <= max_secret_bytes);
    FUZZ_CHECK(sign(*secret.bytes, "msg_1", 1614265330, text).starts_with("v1,"));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto text = adms::fuzz::as_text(data, size);
    check_retry_after(text);
    check_secret(text);

    static const auto fixed_allow = *network_list::parse("127.0.0.0/8,::1,10.0.0.0/8").value;
    check_url(text, network_list{});
    check_url(text, fixed_allow);
    check_address_rules(text, network_list{});
    check_address_rules(text, fixed_allow);

    // The input as the allow-list setting; then the rest as a URL and an address under it.
    auto newline = text.find('\n');
    auto list_text = text.substr(0, newline);
    auto parsed = network_list::parse(list_text);
    FUZZ_CHECK(parsed.value.has_value() == parsed.error.empty());
    if (!parsed.value) {
        check_error_text(parsed.error);
        return 0;
    }
    for (auto probe : {"127.0.0.1", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "10.1.2.3",
                       "169.254.169.254", "fd00::1", "0.0.0.0", "8.8.8.8"}) {
        check_address_rules(probe, *parsed.value);
    }
    if (newline != std::string_view::npos) {
        auto rest = text.substr(newline + 1);
        check_url(rest, *parsed.value);
        check_address_rules(rest, *parsed.value);
    }
    return 0;
}
