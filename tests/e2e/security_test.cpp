// End-to-end: the device side's restrictions (source networks, communication key, rate limits)
// and the admin API's failed-login limit, against the real server on 127.0.0.1.
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

using namespace adms;
using adms::test::device_get;
using adms::test::device_post;
using adms::test::round_trip;
using adms::test::running_server;
using adms::test::temp_dir;

namespace {

server::settings base_settings()
{
    server::settings s;
    s.time_zone = "Europe/Berlin";
    return s;
}

std::size_t count(const std::string& text, std::string_view what)
{
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

const std::string punch = "7\t2026-05-04 08:00:00\t0\t1\t0\t0\t0\n";

} // namespace

TEST_CASE("A source outside device_networks gets 403, its upload is kept apart, not stored as "
          "punches, and nothing about it is registered",
          "[e2e][security]")
{
    temp_dir dir;
    auto config = base_settings();
    config.device_networks = "10.0.0.0/8, 192.168.0.0/16";
    running_server server{config, dir.path};

    auto handshake = device_get(server.port, "/iclock/cdata?SN=OUTSIDE1&options=all");
    CHECK(handshake.status == 403);
    CHECK(handshake.body == "forbidden: source address 127.0.0.1 is outside device_networks\n");
    auto upload = device_post(server.port, "/iclock/cdata?SN=OUTSIDE1&table=ATTLOG", punch);
    CHECK(upload.status == 403);
    CHECK(device_get(server.port, "/iclock/getrequest?SN=OUTSIDE1").status == 403);

    auto db = server.database();
    CHECK(db->punches().list_punches({}).value->empty());
    CHECK(db->devices().load_devices().value->empty());
    auto kept = db->uploads().list_table_bodies({});
    REQUIRE(kept.value->size() == 1);
    CHECK(kept.value->at(0).table == "refused:cdata:ATTLOG");
    CHECK(kept.value->at(0).body == punch);
    // Logged once a minute per device, address and reason, not per request.
    CHECK(count(server.log_text(), "outside device_networks (logged once a minute)") == 1);
}

TEST_CASE("Loopback inside device_networks is served", "[e2e][security]")
{
    temp_dir dir;
    auto config = base_settings();
    config.device_networks = "127.0.0.0/8";
    running_server server{config, dir.path};
    CHECK(device_get(server.port, "/iclock/cdata?SN=INSIDE1&options=all").status == 200);
}

TEST_CASE("A device with a communication key: the handshake must carry it, later requests come "
          "from the address that did",
          "[e2e][security]")
{
    temp_dir dir;
    auto config = base_settings();
    config.comm_key = "global-key-1";
    config.devices["KEYED1"].comm_key = "own-key-2";
    running_server server{config, dir.path};

    // No key, a wrong key, the global key where the device has its own: all refused.
    auto none = device_get(server.port, "/iclock/cdata?SN=KEYED1&options=all");
    CHECK(none.status == 403);
    CHECK(none.body == "forbidden: the handshake has no communication key (pushcommkey)\n");
    auto wrong = device_get(server.port, "/iclock/cdata?SN=KEYED1&options=all&pushcommkey=x");
    CHECK(wrong.body == "forbidden: wrong communication key (pushcommkey)\n");
    CHECK(device_get(server.port, "/iclock/cdata?SN=KEYED1&options=all&pushcommkey=global-key-1")
              .status == 403);
    // An upload before any good handshake is refused and kept apart.
    auto early = device_post(server.port, "/iclock/cdata?SN=KEYED1&table=ATTLOG", punch);
    CHECK(early.status == 403);
    CHECK(early.body == "forbidden: no handshake with the communication key from 127.0.0.1 yet\n");

    auto good =
        device_get(server.port, "/iclock/cdata?SN=KEYED1&options=all&pushcommkey=own-key-2");
    CHECK(good.status == 200);
    // From that address the device's requests need no key.
    CHECK(device_post(server.port, "/iclock/cdata?SN=KEYED1&table=ATTLOG", punch).body == "OK:1");
    CHECK(device_get(server.port, "/iclock/getrequest?SN=KEYED1").status == 200);
    // A device without its own key uses the global one.
    CHECK(device_get(server.port, "/iclock/cdata?SN=OTHER1&options=all&pushcommkey=global-key-1")
              .status == 200);
    CHECK(device_get(server.port, "/iclock/cdata?SN=OTHER1&options=all&pushcommkey=own-key-2")
              .status == 403);

    auto db = server.database();
    CHECK(db->punches().list_punches({}).value->size() == 1);
    auto kept = db->uploads().list_table_bodies({});
    REQUIRE(kept.value->size() == 1);
    CHECK(kept.value->at(0).table == "refused:cdata:ATTLOG");

    // The keys never reach the log or the admin API.
    auto log = server.log_text();
    CHECK(log.find("own-key-2") == std::string::npos);
    CHECK(log.find("global-key-1") == std::string::npos);
    CHECK(log.find("pushcommkey=***") != std::string::npos);
    auto device =
        round_trip(server.port, fmt::format("GET /devices/KEYED1 HTTP/1.1\r\nHost: x\r\n"
                                            "Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
                                            adms::test::test_token));
    CHECK(device.status == 200);
    CHECK(device.body.find("own-key-2") == std::string::npos);
}

TEST_CASE("A keyed device is trusted after a restart from the address it was last accepted from",
          "[e2e][security]")
{
    temp_dir dir;
    auto config = base_settings();
    config.devices["KEYED2"].comm_key = "own-key-3";
    running_server server{config, dir.path};
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=KEYED2&options=all&pushcommkey=own-key-3")
                .status == 200);
    server.stop();
    server.start();
    CHECK(device_post(server.port, "/iclock/cdata?SN=KEYED2&table=ATTLOG", punch).body == "OK:1");
}

TEST_CASE(
    "Over the per-device rate limit a device gets 503 with Retry-After, logged once, while other "
    "devices and polls are unaffected",
    "[e2e][security]")
{
    temp_dir dir;
    auto config = base_settings();
    config.device_rate_limit = 1; // a burst of 5, then one a second
    running_server server{config, dir.path};

    int ok = 0;
    int limited = 0;
    std::string retry_after;
    for (int i = 0; i < 12; ++i) {
        auto reply = device_get(server.port, "/iclock/cdata?SN=NOISY1&options=all");
        if (reply.status == 200) {
            ++ok;
        } else {
            REQUIRE(reply.status == 503);
            CHECK(reply.body == "rate limit exceeded, retry later\n");
            retry_after = reply.headers["retry-after"];
            ++limited;
        }
    }
    // The 12 requests take well under the 7 s that would refill 7 tokens.
    CHECK(ok >= 5);
    CHECK(ok < 12);
    CHECK(limited > 0);
    CHECK(retry_after == "1");
    CHECK(device_get(server.port, "/iclock/getrequest?SN=NOISY1").status == 200);
    CHECK(device_get(server.port, "/iclock/cdata?SN=QUIET1&options=all").status == 200);
    CHECK(count(server.log_text(), "Rate limit: device NOISY1 exceeds 1 handshakes and uploads a "
                                   "second; answering 503 (logged once a minute)") == 1);
}

TEST_CASE("The per-address limit covers every device behind one address", "[e2e][security]")
{
    temp_dir dir;
    auto config = base_settings();
    config.address_rate_limit = 1;
    running_server server{config, dir.path};
    int limited = 0;
    for (int i = 0; i < 12; ++i) {
        auto reply = device_get(server.port, fmt::format("/iclock/cdata?SN=NAT{}&options=all", i));
        limited += reply.status == 503 ? 1 : 0;
    }
    CHECK(limited > 0);
    CHECK(server.log_text().find("Rate limit: address 127.0.0.1 exceeds 1") != std::string::npos);
}

TEST_CASE("Failed admin logins are logged with the address and limited to ten a minute",
          "[e2e][security]")
{
    temp_dir dir;
    running_server server{base_settings(), dir.path};
    auto call = [&](std::string_view token) {
        return round_trip(server.port,
                          fmt::format("GET /devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                      "{}\r\nConnection: close\r\n\r\n",
                                      token));
    };
    for (int i = 0; i < 10; ++i) {
        REQUIRE(call("wrong-token-0123456789").status == 401);
    }
    auto locked = call("wrong-token-0123456789");
    CHECK(locked.status == 429);
    CHECK(locked.headers["retry-after"] == "60");
    // While locked out even the right token is not looked at.
    CHECK(call(adms::test::test_token).status == 429);
    auto log = server.log_text();
    CHECK(count(log, "Admin API: failed login from 127.0.0.1 (invalid bearer token) to GET "
                     "/devices") == 1);
    CHECK(count(log, "Admin API: too many failed logins from 127.0.0.1") == 1);
    CHECK(log.find("wrong-token-0123456789") == std::string::npos);
}

TEST_CASE("Start-up refuses settings that would silently weaken the restrictions",
          "[e2e][security]")
{
    temp_dir dir;
    auto start_with = [&](server::settings s) {
        s.time_zone = "UTC";
        s.listen = "127.0.0.1:0";
        s.data_dir = (dir.path / "data").string();
        s.admin_tokens = {std::string{adms::test::test_token}};
        auto log = std::fopen((dir.path / "start.log").c_str(), "a");
        std::string error;
        {
            server::app app{s, log};
            error = app.start().error;
        }
        std::fclose(log);
        return error;
    };
    server::settings bad_networks;
    bad_networks.device_networks = "10.0.0.1/8";
    CHECK(start_with(bad_networks) == "invalid device_networks: '10.0.0.1/8' has host bits set");
    server::settings tls_without_port;
    tls_without_port.admin_tls = true;
    CHECK(start_with(tls_without_port) ==
          "admin_tls needs admin_listen: the admin API shares the device listener (use "
          "tls_listen for TLS there)");
}
