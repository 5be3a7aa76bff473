#include "protocol/command.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>

using namespace adms::protocol;

TEST_CASE("Command ids are 1 to 16 ASCII letters or digits", "[command]")
{
    CHECK(is_valid_command_id("1"));
    CHECK(is_valid_command_id("abcDEF0123456789"));
    CHECK_FALSE(is_valid_command_id("abcDEF01234567890"));
    CHECK_FALSE(is_valid_command_id(""));
    CHECK_FALSE(is_valid_command_id("a-b"));
    CHECK_FALSE(is_valid_command_id("a:b"));
    CHECK_FALSE(is_valid_command_id("\xc3\xa9"));
}

TEST_CASE("A command renders as C:<id>:<command>", "[command]")
{
    CHECK(render_command({"101", "SET OPTIONS DateTime=583080894"}) ==
          "C:101:SET OPTIONS DateTime=583080894");
    CHECK(render_command({"7", "DATA UPDATE USERINFO PIN=1\tName=Ann\tPri=0"}) ==
          "C:7:DATA UPDATE USERINFO PIN=1\tName=Ann\tPri=0");
    CHECK_FALSE(render_command({"bad id", "INFO"}));
    CHECK_FALSE(render_command({"1", "INFO\nREBOOT"}));
    CHECK_FALSE(render_command({"1", "INFO\r"}));
    CHECK_FALSE(render_command({"1", std::string{"IN\0FO", 5}}));
    CHECK_FALSE(render_command({"1", "   "}));
}

TEST_CASE("REBOOT is recognised with surrounding blanks only", "[command]")
{
    CHECK(is_reboot_command("REBOOT"));
    CHECK(is_reboot_command(" REBOOT\t"));
    CHECK_FALSE(is_reboot_command("REBOOTX"));
    CHECK_FALSE(is_reboot_command("SET OPTION REBOOT=1"));
}

TEST_CASE("An empty queue answers OK", "[command]")
{
    auto batch = build_command_batch({});
    CHECK(batch.body == "OK");
    CHECK(batch.sent_ids.empty());
    CHECK(batch.unsendable.empty());
}

TEST_CASE("Commands go in queue order joined by LF with REBOOT last", "[command]")
{
    std::vector<device_command> queue{{"1", "REBOOT"}, {"2", "INFO"}, {"3", "CHECK"}};
    auto batch = build_command_batch(queue);
    CHECK(batch.body == "C:2:INFO\nC:3:CHECK\nC:1:REBOOT");
    CHECK(batch.sent_ids == std::vector<std::string>{"2", "3", "1"});
}

TEST_CASE("Only one REBOOT goes per reply", "[command]")
{
    std::vector<device_command> queue{{"1", "REBOOT"}, {"2", "REBOOT"}, {"3", "LOG"}};
    auto batch = build_command_batch(queue);
    CHECK(batch.body == "C:3:LOG\nC:1:REBOOT");
}

TEST_CASE("A batch stops at 200 commands", "[command]")
{
    std::vector<device_command> queue;
    for (int i = 1; i <= 250; ++i) {
        queue.push_back({fmt::format("{}", i), "INFO"});
    }
    auto batch = build_command_batch(queue);
    REQUIRE(batch.sent_ids.size() == 200);
    CHECK(batch.sent_ids.front() == "1");
    CHECK(batch.sent_ids.back() == "200");
    CHECK(std::count(batch.body.begin(), batch.body.end(), '\n') == 199);
    CHECK(batch.body.substr(batch.body.size() - 10) == "C:200:INFO");
}

TEST_CASE("A batch stops before 40 KB and keeps queue order", "[command]")
{
    std::vector<device_command> queue;
    std::string payload(1000, 'x');
    for (int i = 1; i <= 60; ++i) {
        queue.push_back({fmt::format("{}", i), "DATA UPDATE USERINFO PIN=1\tName=" + payload});
    }
    queue.push_back({"small", "INFO"});
    auto batch = build_command_batch(queue);
    CHECK(batch.body.size() <= 40 * 1024);
    // Each line is about 1,034 bytes: 39 fit in 40,960 bytes, and the small command at the end
    // must not jump the queue.
    REQUIRE(batch.sent_ids.size() == 39);
    CHECK(batch.sent_ids.back() == "39");
    CHECK(batch.unsendable.empty());
}

TEST_CASE("The byte limit counts separators and is exact at the boundary", "[command]")
{
    // "C:1:" + 6 chars = 10 bytes; two lines and one LF = 21 bytes.
    std::vector<device_command> queue{{"1", "AAAAAA"}, {"2", "BBBBBB"}};
    CHECK(build_command_batch(queue, {200, 21}).sent_ids.size() == 2);
    CHECK(build_command_batch(queue, {200, 20}).sent_ids.size() == 1);
    CHECK(build_command_batch(queue, {1, 1000}).sent_ids.size() == 1);
}

TEST_CASE("REBOOT waits when a command queued before it did not fit", "[command]")
{
    std::vector<device_command> queue{{"1", "INFO"}, {"2", "CHECK"}, {"3", "REBOOT"}};
    auto batch = build_command_batch(queue, {2, 1000});
    CHECK(batch.body == "C:1:INFO\nC:2:CHECK");
    std::vector<device_command> later{{"3", "REBOOT"}, {"4", "CHECK"}};
    CHECK(build_command_batch(later, {2, 1000}).body == "C:4:CHECK\nC:3:REBOOT");
    CHECK(build_command_batch(later, {1, 1000}).body == "C:4:CHECK");
}

TEST_CASE("Commands that can never be sent are reported, not stuck at the head", "[command]")
{
    std::vector<device_command> queue{
        {"1", std::string(50 * 1024, 'x')}, {"bad id", "INFO"}, {"3", "A\nB"}, {"4", "LOG"}};
    auto batch = build_command_batch(queue);
    CHECK(batch.body == "C:4:LOG");
    CHECK(batch.unsendable == std::vector<std::string>{"1", "bad id", "3"});
}

TEST_CASE("A GPRS-sized limit of 10 KB is honoured", "[command]")
{
    std::vector<device_command> queue;
    for (int i = 1; i <= 200; ++i) {
        queue.push_back({fmt::format("{}", i), std::string(100, 'y')});
    }
    auto batch = build_command_batch(queue, {200, 10 * 1024});
    CHECK(batch.body.size() <= 10 * 1024);
    CHECK(batch.body.size() > 10 * 1024 - 110);
}
