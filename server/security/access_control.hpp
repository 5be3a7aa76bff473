#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

// The device side's restrictions: which source networks may speak iclock, and how often one
// device or one address may handshake and upload.
namespace adms::server {

// A list of IP networks in CIDR notation ("10.0.0.0/8", "fd00::/8"; a bare address is one host).
// IPv4 addresses seen as IPv4-mapped IPv6 ("::ffff:10.1.2.3", on a dual-stack listener) match
// IPv4 networks.
class network_list {
  public:
    struct parse_result; // below: it holds a network_list
    // Parses a comma-separated list; spaces around entries are ignored. Empty: no restriction.
    static parse_result parse(std::string_view text);

    bool empty() const { return networks_.empty(); }
    // True when `address` (as the socket reports it) is in one of the networks. An empty list
    // contains every address; text that is not an address is in none.
    bool contains(std::string_view address) const;

  private:
    struct network {
        std::array<unsigned char, 16> bytes{}; // IPv4 as IPv4-mapped IPv6
        int prefix = 0;                        // in bits, of the 128
    };
    std::vector<network> networks_;
};

struct network_list::parse_result {
    std::optional<network_list> value;
    std::string error; // names the bad entry, e.g. "'10.0.0.1/8' has host bits set"
};

// Token buckets keyed by text (a serial number, a source address): each key may make `rate`
// requests a second on average and a burst of `burst` (by default 5 seconds' worth). Thread safe.
// At most `max_keys` buckets are kept: full (idle) ones are dropped first, so random keys cannot
// grow it without bound.
class rate_limiter {
  public:
    using time_point = std::chrono::steady_clock::time_point;

    // rate 0 turns the limiter off: every take() is allowed.
    explicit rate_limiter(double rate, double burst = 0, std::size_t max_keys = 100'000);

    struct decision {
        bool allowed = true;
        bool log = false;                    // refused, and this key was not logged in a minute
        std::chrono::seconds retry_after{0}; // when refused: until a token is back (>= 1 s)
    };
    // Takes one token for `key` at `now`.
    decision take(std::string_view key, time_point now);
    // Whether take() would refuse `key` at `now` (takes nothing).
    bool exhausted(std::string_view key, time_point now);

    bool enabled() const { return rate_ > 0; }
    double rate() const { return rate_; }

  private:
    struct bucket {
        double tokens = 0;
        time_point updated{};
        std::optional<time_point> logged;
    };
    double refill(bucket& b, time_point now) const;

    double rate_;
    double burst_;
    std::size_t max_keys_;
    std::mutex mutex_;
    std::unordered_map<std::string, bucket> buckets_;
};

// Lets a message through once a minute per key (for log lines about refused requests).
class log_throttle {
  public:
    bool allow(const std::string& key, std::chrono::steady_clock::time_point now);

  private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_;
};

} // namespace adms::server
