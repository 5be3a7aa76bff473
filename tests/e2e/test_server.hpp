#pragma once

// The fixture of the end-to-end tests: the real application on 127.0.0.1:0 with a fresh data
// directory, logging to a file the test reads back.
#include "server/app.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "tests/e2e/device_client.hpp"
#include "tests/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

namespace adms::test {

// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds{10})
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return true;
}

// A device's stored row once `ready(row)` holds: the server writes device rows within a second
// of a change, not before answering. nullopt when it does not within 10 s.
template <class Ready>
std::optional<adms::server::device_record>
stored_device(adms::server::sqlite_database& db, const std::string& serial_number, Ready ready)
{
    std::optional<adms::server::device_record> found;
    eventually([&] {
        auto loaded = db.devices().load_device(serial_number);
        if (loaded && *loaded.value && ready(**loaded.value)) {
            found = **loaded.value;
            return true;
        }
        return false;
    });
    return found;
}

// The admin token the fixture configures unless a test sets its own.
inline constexpr std::string_view test_token = "test-token-0123456789abcdef";

// One admin API call with the fixture's token.
inline http_reply admin_api_call(unsigned short port, const std::string& method,
                                 const std::string& target, const std::string& body = {})
{
    return admin_call(port, method, target, body, test_token);
}

// The JSON object a reply carries; fails the test (showing the reply) when it carries none.
inline boost::json::object json_object_of(const http_reply& reply)
{
    INFO(reply.raw);
    auto value = boost::json::parse(reply.body);
    REQUIRE(value.is_object());
    return value.as_object();
}

// The application under test, logging to a file the test reads back.
struct running_server {
    adms::server::settings config;
    std::filesystem::path log_path;
    std::FILE* log = nullptr;
    std::unique_ptr<adms::server::app> app;
    unsigned short port = 0;
    unsigned short admin_port = 0; // the admin API's own port when config.admin_listen is set
    unsigned short ntp_port = 0;   // the SNTP server's UDP port when config.ntp_listen is set

    running_server(adms::server::settings s, const std::filesystem::path& dir)
        : config{std::move(s)}
    {
        config.listen = "127.0.0.1:0";
        config.data_dir = (dir / "data").string();
        config.threads = 2;
        if (config.admin_tokens.empty()) {
            config.admin_tokens = {std::string{test_token}};
        }
        log_path = dir / fmt::format("admsd-{}.log", reinterpret_cast<std::uintptr_t>(this));
        start();
    }
    ~running_server() { stop(); }

    void start()
    {
        log = std::fopen(log_path.c_str(), "a");
        app = std::make_unique<adms::server::app>(config, log);
        auto started = app->start();
        REQUIRE(started.error == "");
        port = started.port;
        admin_port = started.admin_port;
        ntp_port = started.ntp_port;
    }

    void stop()
    {
        if (app) {
            app->stop();
            app.reset();
            std::fclose(log);
        }
    }

    std::string log_text() const
    {
        std::ifstream in{log_path};
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    // A second, read-only connection to the database (WAL lets it read beside the server).
    std::unique_ptr<adms::server::sqlite_database> database() const
    {
        adms::server::sqlite_open_options options;
        options.read_only = true;
        auto opened = adms::server::sqlite_database::open(
            std::filesystem::path{config.data_dir} / "admsd.sqlite3", options);
        REQUIRE(opened);
        return std::move(*opened.value);
    }
};

} // namespace adms::test
