#include "protocol/civil_time.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <future>
#include <stdexcept>
#include <string>
#include <vector>

using namespace adms::server;
namespace protocol = adms::protocol;

namespace {

std::unique_ptr<sqlite_database> open_store(const adms::test::temp_dir& dir)
{
    auto opened = sqlite_database::open(dir.path / "admsd.sqlite3");
    REQUIRE(opened);
    return std::move(*opened.value);
}

std::vector<punch_input> one_punch(int pin)
{
    punch_input p;
    p.record.pin = std::to_string(pin);
    p.record.time = protocol::parse_civil_time("2026-03-01 08:00:00").value();
    p.raw_line = p.record.pin + "\t2026-03-01 08:00:00\t0\t1";
    return {p};
}

} // namespace

TEST_CASE("Calls queued while a commit runs share the next commit and resume after it",
          "[commit_queue]")
{
    adms::test::temp_dir dir;
    auto store = open_store(dir);
    commit_queue queue{*store};
    net::io_context io;

    // The first call holds the writer until every other call is queued.
    std::promise<void> started;
    std::promise<void> release;
    auto released = release.get_future().share();
    bool first_done = false;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            auto r = co_await queue.run([&](write_tx& tx) {
                started.set_value();
                released.wait();
                return tx.punches().store_punches("Q1", one_punch(0), instant{}, false);
            });
            first_done = static_cast<bool>(r);
        },
        net::detached);
    io.poll();
    started.get_future().wait(); // the first call runs on the writer
    constexpr int waiting = 100;
    int stored = 0;
    for (int i = 1; i <= waiting; ++i) {
        net::co_spawn(
            io,
            [&, i]() -> net::awaitable<void> {
                auto r = co_await queue.run([&, i](write_tx& tx) {
                    return tx.punches().store_punches("Q1", one_punch(i), instant{}, false);
                });
                if (r && r.value->stored == 1) {
                    ++stored;
                }
            },
            net::detached);
    }
    io.poll(); // every other call is queued behind the first
    release.set_value();
    io.run(); // returns once every call has resumed

    CHECK(first_done);
    CHECK(stored == waiting);
    CHECK(queue.calls() == waiting + 1);
    CHECK(queue.batches() == 2);
    CHECK(store->punches().list_punches({.limit = 1000}).value->size() == waiting + 1);
}

TEST_CASE("An exception thrown by one call reaches its coroutine and the batch still commits",
          "[commit_queue]")
{
    adms::test::temp_dir dir;
    auto store = open_store(dir);
    commit_queue queue{*store};
    net::io_context io;
    std::string caught;
    bool other_stored = false;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            try {
                co_await queue.run(
                    [](write_tx&) -> storage_status { throw std::runtime_error{"boom"}; });
            } catch (const std::runtime_error& e) {
                caught = e.what();
            }
        },
        net::detached);
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            auto r = co_await queue.run([&](write_tx& tx) {
                return tx.punches().store_punches("Q2", one_punch(1), instant{}, false);
            });
            other_stored = static_cast<bool>(r);
        },
        net::detached);
    io.run();
    CHECK(caught == "boom");
    CHECK(other_stored);
    CHECK(store->punches().list_punches({}).value->size() == 1);
}

TEST_CASE("After stop a call gets an error instead of running", "[commit_queue]")
{
    adms::test::temp_dir dir;
    auto store = open_store(dir);
    commit_queue queue{*store};
    queue.stop();
    net::io_context io;
    std::optional<storage_status> result;
    bool ran = false;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            result.emplace(co_await queue.run([&](write_tx&) -> storage_status {
                ran = true;
                return std::monostate{};
            }));
        },
        net::detached);
    io.run();
    REQUIRE(result);
    CHECK_FALSE(*result);
    CHECK_FALSE(ran);
}
