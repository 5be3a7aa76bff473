#include "server/security/access_control.hpp"

#include <catch2/catch.hpp>

using adms::server::network_list;
using adms::server::rate_limiter;
using namespace std::chrono;

TEST_CASE("network_list: CIDR networks and single hosts, IPv4 and IPv6", "[access]")
{
    auto parsed = network_list::parse(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,2001:db8::1");
    REQUIRE(parsed.value);
    const auto& list = *parsed.value;
    CHECK(list.contains("10.200.3.4"));
    CHECK(list.contains("192.168.1.7"));
    CHECK_FALSE(list.contains("192.168.1.8"));
    CHECK_FALSE(list.contains("11.0.0.1"));
    CHECK(list.contains("fd12:3456::1"));
    CHECK(list.contains("2001:db8::1"));
    CHECK_FALSE(list.contains("2001:db8::2"));
    // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6 addresses.
    CHECK(list.contains("::ffff:10.1.2.3"));
    CHECK_FALSE(list.contains("::ffff:11.1.2.3"));
    CHECK_FALSE(list.contains("not an address"));
    CHECK_FALSE(list.contains(""));
}

TEST_CASE("network_list: prefixes that do not fall on a byte boundary", "[access]")
{
    auto list = *network_list::parse("172.16.0.0/12,10.1.2.128/25").value;
    CHECK(list.contains("172.31.255.255"));
    CHECK_FALSE(list.contains("172.32.0.0"));
    CHECK_FALSE(list.contains("172.15.255.255"));
    CHECK(list.contains("10.1.2.200"));
    CHECK_FALSE(list.contains("10.1.2.127"));
}

TEST_CASE("network_list: an empty list contains every address, and so does 0.0.0.0/0 for IPv4",
          "[access]")
{
    auto empty = *network_list::parse("").value;
    CHECK(empty.empty());
    CHECK(empty.contains("203.0.113.9"));
    auto all_v4 = *network_list::parse("0.0.0.0/0").value;
    CHECK(all_v4.contains("203.0.113.9"));
    CHECK_FALSE(all_v4.contains("2001:db8::1"));
}

TEST_CASE("network_list: bad entries are refused with the entry named", "[access]")
{
    auto host_bits = network_list::parse("10.0.0.0/8,10.0.0.1/8");
    CHECK_FALSE(host_bits.value);
    CHECK(host_bits.error == "'10.0.0.1/8' has host bits set");
    CHECK(network_list::parse("10.0.0.0/33").error ==
          "'10.0.0.0/33' has a prefix length outside 0..32");
    CHECK(network_list::parse("fd00::/129").error ==
          "'fd00::/129' has a prefix length outside 0..128");
    CHECK(network_list::parse("10.0.0.0/").error ==
          "'10.0.0.0/' has a prefix length outside 0..32");
    CHECK(network_list::parse("10.0.0.0/-1").error ==
          "'10.0.0.0/-1' has a prefix length outside 0..32");
    CHECK(network_list::parse("example.com").error ==
          "'example.com' is not an IP address or network");
    CHECK(network_list::parse("10.0.0.256").error ==
          "'10.0.0.256' is not an IP address or network");
}

TEST_CASE("rate_limiter: a burst of 5 seconds' worth, then the rate, per key", "[access]")
{
    rate_limiter limiter{2}; // 2 a second, burst 10
    auto t0 = steady_clock::time_point{} + hours{1};
    for (int i = 0; i < 10; ++i) {
        REQUIRE(limiter.take("A", t0).allowed);
    }
    auto refused = limiter.take("A", t0);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after == seconds{1});
    CHECK(refused.log);
    // Logged once a minute per key.
    CHECK_FALSE(limiter.take("A", t0 + milliseconds{100}).log);
    // Another key has its own bucket.
    CHECK(limiter.take("B", t0).allowed);
    // Half a second later one token is back.
    CHECK(limiter.take("A", t0 + milliseconds{500}).allowed);
    CHECK_FALSE(limiter.take("A", t0 + milliseconds{500}).allowed);
    // A minute later the bucket is full again, and the next refusal is logged again, once.
    int allowed = 0;
    int logged = 0;
    for (int i = 0; i < 20; ++i) {
        auto d = limiter.take("A", t0 + seconds{61});
        allowed += d.allowed ? 1 : 0;
        logged += d.log ? 1 : 0;
    }
    CHECK(allowed == 10);
    CHECK(logged == 1);
}

TEST_CASE("rate_limiter: retry_after counts the seconds until a token is back", "[access]")
{
    rate_limiter limiter{0.1, 1}; // one every 10 s
    auto t0 = steady_clock::time_point{} + hours{1};
    CHECK(limiter.take("A", t0).allowed);
    CHECK_FALSE(limiter.exhausted("B", t0));
    CHECK(limiter.exhausted("A", t0));
    auto refused = limiter.take("A", t0 + seconds{3});
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after == seconds{7});
    CHECK_FALSE(limiter.exhausted("A", t0 + seconds{10}));
}

TEST_CASE("rate_limiter: rate 0 is off", "[access]")
{
    rate_limiter off{0};
    CHECK_FALSE(off.enabled());
    auto t0 = steady_clock::time_point{};
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(off.take("A", t0).allowed);
    }
    CHECK_FALSE(off.exhausted("A", t0));
}

TEST_CASE("rate_limiter: random keys cannot grow it past max_keys once buckets refill", "[access]")
{
    rate_limiter limiter{10, 0, 100};
    auto t0 = steady_clock::time_point{} + hours{1};
    for (int i = 0; i < 100; ++i) {
        limiter.take("key" + std::to_string(i), t0);
    }
    // A second later every bucket is full again, so a new key evicts them rather than growing.
    auto t1 = t0 + seconds{1};
    CHECK(limiter.take("new", t1).allowed);
    // The evicted keys start over with a full burst.
    for (int i = 0; i < 50; ++i) {
        REQUIRE(limiter.take("key0", t1).allowed);
    }
    CHECK_FALSE(limiter.take("key0", t1).allowed);
}
