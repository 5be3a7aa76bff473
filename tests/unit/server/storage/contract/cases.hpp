#pragma once

#include "protocol/civil_time.hpp"
#include "tests/unit/server/storage/contract/backend_factory.hpp"
#include "tests/unit/server/storage/contract/test_store.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// What the storage cases share: opening a store on a backend, and building and reading rows.
namespace adms::storage_test {

using namespace std::chrono_literals;

// A store on a fresh, empty database of `backend`.
inline std::unique_ptr<test_store> open_store(backend_factory& backend)
{
    return std::make_unique<test_store>(backend.make(), backend);
}

// Another store on the database `backend` made last (open or closed).
inline std::unique_ptr<test_store> reopen_store(backend_factory& backend)
{
    return std::make_unique<test_store>(backend.reopen(), backend);
}

inline instant at(std::int64_t seconds)
{
    return instant{std::chrono::seconds{seconds}};
}

inline punch_input punch(std::string pin, std::string_view time, int status = 0, int verify = 1)
{
    punch_input p;
    p.record.pin = std::move(pin);
    p.record.time = protocol::parse_civil_time(time).value();
    p.record.status = status;
    p.record.verify = verify;
    p.raw_line = fmt::format("{}\t{}\t{}\t{}\t", p.record.pin, time, status, verify);
    return p;
}

// Chooses every offered command, in queue order.
inline command_choice choose_all(const std::vector<queued_command>& offered)
{
    command_choice choice;
    for (const auto& c : offered) {
        choice.send.push_back(c.id);
    }
    return choice;
}

inline std::vector<std::string> ids_of(const std::vector<queued_command>& commands)
{
    std::vector<std::string> ids;
    for (const auto& c : commands) {
        ids.push_back(c.id);
    }
    return ids;
}

inline const resend_policy policy{60s, 3};

// The UTC instant of a device time in a zone one hour ahead of UTC.
inline std::chrono::sys_seconds utc_of(std::string_view local)
{
    return std::chrono::sys_seconds{protocol::parse_civil_time(local).value().time_since_epoch()} -
           1h;
}

// A punch whose UTC instant is known.
inline punch_input placed_punch(std::string pin, std::string_view time)
{
    auto p = punch(std::move(pin), time);
    p.utc = utc_of(time);
    return p;
}

// "serial pin local_time" of each punch, in the order given.
inline std::vector<std::string> keys_of(const std::vector<stored_punch>& punches)
{
    std::vector<std::string> keys;
    for (const auto& p : punches) {
        keys.push_back(fmt::format("{} {} {}", p.serial_number, p.pin, p.local_time));
    }
    return keys;
}

inline std::vector<std::int64_t> ids_of(const std::vector<stored_punch>& punches)
{
    std::vector<std::int64_t> ids;
    for (const auto& p : punches) {
        ids.push_back(p.id);
    }
    return ids;
}

// The punches query_punches returns for `filter`; fails the test on an error value.
inline std::vector<stored_punch> query(test_store& store, const punch_filter& filter)
{
    auto got = store.query_punches(filter);
    INFO(got.error.message);
    REQUIRE(got);
    return *got.value;
}

} // namespace adms::storage_test
