#include "server/security/access_control.hpp"

#include "protocol/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cmath>
#include <cstring>

namespace adms::server {
namespace {

constexpr std::array<unsigned char, 12> v4_mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// An address as 16 bytes (IPv4 mapped into IPv6) and whether it was IPv4.
std::optional<std::pair<std::array<unsigned char, 16>, bool>> parse_address(std::string_view text)
{
    std::string s{text};
    std::array<unsigned char, 16> bytes{};
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        std::copy(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), bytes.begin());
        std::memcpy(bytes.data() + 12, &v4, 4);
        return std::pair{bytes, true};
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(bytes.data(), &v6, 16);
        return std::pair{bytes, false};
    }
    return std::nullopt;
}

bool prefix_matches(const std::array<unsigned char, 16>& a, const std::array<unsigned char, 16>& b,
                    int prefix)
{
    int full = prefix / 8;
    if (!std::equal(a.begin(), a.begin() + full, b.begin())) {
        return false;
    }
    int rest = prefix % 8;
    if (rest == 0) {
        return true;
    }
    auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[static_cast<std::size_t>(full)] & mask) == (b[static_cast<std::size_t>(full)] & mask);
}

// An entry in single quotes for an error: the setting comes from a flag, the environment or a
// file, and a stray control byte or a pasted megabyte must not reach the log as it is.
std::string quoted(std::string_view entry)
{
    return protocol::text::quote(entry, 64);
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

} // namespace

network_list::parse_result network_list::parse(std::string_view text)
{
    network_list list;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = std::min(text.find(',', start), text.size());
        auto entry = trim(text.substr(start, comma - start));
        start = comma + 1;
        if (entry.empty()) {
            continue;
        }
        auto slash = entry.find('/');
        auto parsed = parse_address(entry.substr(0, slash));
        if (!parsed) {
            return {std::nullopt, fmt::format("{} is not an IP address or network", quoted(entry))};
        }
        auto [bytes, is_v4] = *parsed;
        int max_bits = is_v4 ? 32 : 128;
        int bits = max_bits;
        if (slash != std::string_view::npos) {
            auto digits = entry.substr(slash + 1);
            bits = -1;
            if (!digits.empty() && digits.size() <= 3 &&
                std::all_of(digits.begin(), digits.end(),
                            [](char c) { return c >= '0' && c <= '9'; })) {
                bits = std::stoi(std::string{digits});
            }
            if (bits < 0 || bits > max_bits) {
                return {std::nullopt, fmt::format("{} has a prefix length outside 0..{}",
                                                  quoted(entry), max_bits)};
            }
        }
        network n{bytes, bits + (is_v4 ? 96 : 0)};
        // Host bits set ("10.0.0.1/8") is most likely a typo for a different network: refuse it
        // rather than guess.
        auto masked = n.bytes;
        for (int bit = n.prefix; bit < 128; ++bit) {
            masked[static_cast<std::size_t>(bit / 8)] &=
                static_cast<unsigned char>(~(0x80 >> (bit % 8)));
        }
        if (masked != n.bytes) {
            return {std::nullopt, fmt::format("{} has host bits set", quoted(entry))};
        }
        list.networks_.push_back(n);
    }
    return {std::move(list), {}};
}

bool network_list::contains(std::string_view address) const
{
    if (networks_.empty()) {
        return true;
    }
    auto parsed = parse_address(address);
    if (!parsed) {
        return false;
    }
    return std::any_of(networks_.begin(), networks_.end(), [&](const network& n) {
        return prefix_matches(n.bytes, parsed->first, n.prefix);
    });
}

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_keys)
    : rate_{std::max(0.0, rate)}, burst_{std::max(1.0, burst > 0 ? burst : rate_ * 5)},
      max_keys_{max_keys}
{
}

bool rate_limiter::exhausted(std::string_view key, time_point now)
{
    if (rate_ <= 0) {
        return false;
    }
    std::lock_guard lock{mutex_};
    auto it = buckets_.find(std::string{key});
    return it != buckets_.end() && refill(it->second, now) < 1;
}

double rate_limiter::refill(bucket& b, time_point now) const
{
    std::chrono::duration<double> elapsed = now - b.updated;
    if (elapsed.count() > 0) {
        b.tokens = std::min(burst_, b.tokens + elapsed.count() * rate_);
        b.updated = now;
    }
    return b.tokens;
}

rate_limiter::decision rate_limiter::take(std::string_view key, time_point now)
{
    if (rate_ <= 0) {
        return {};
    }
    std::lock_guard lock{mutex_};
    auto it = buckets_.find(std::string{key});
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_keys_) {
            // Buckets that refilled completely say nothing a new bucket would not: drop them.
            for (auto at = buckets_.begin(); at != buckets_.end();) {
                at = refill(at->second, now) >= burst_ ? buckets_.erase(at) : std::next(at);
            }
        }
        it = buckets_.emplace(std::string{key}, bucket{burst_, now, std::nullopt}).first;
    }
    auto& b = it->second;
    refill(b, now);
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return {};
    }
    decision refused;
    refused.allowed = false;
    refused.retry_after = std::chrono::seconds{
        std::max<long long>(1, static_cast<long long>(std::ceil((1 - b.tokens) / rate_)))};
    if (!b.logged || now - *b.logged >= std::chrono::minutes{1}) {
        b.logged = now;
        refused.log = true;
    }
    return refused;
}

bool log_throttle::allow(const std::string& key, std::chrono::steady_clock::time_point now)
{
    std::lock_guard lock{mutex_};
    if (last_.size() > 10'000) {
        std::erase_if(last_,
                      [&](auto& item) { return now - item.second >= std::chrono::minutes{1}; });
    }
    auto [it, inserted] = last_.try_emplace(key, now);
    if (inserted) {
        return true;
    }
    if (now - it->second >= std::chrono::minutes{1}) {
        it->second = now;
        return true;
    }
    return false;
}

} // namespace adms::server
