#include "protocol/command.hpp"
#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>

// The command queue every backend must have: exactly-once claims under concurrent polls,
// resend and expiry, results matched by id, one pending time sync.

using namespace adms::storage_test;
namespace protocol = adms::protocol;

TEST_CASE("A claimed command is sent once, re-sent after the timeout and expired at the cap",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto id = store->enqueue_command("A1", "SET OPTIONS DateTime=583080894", "time-sync", at(0));
    REQUIRE(id);
    CHECK(protocol::is_valid_command_id(*id.value));

    auto first = store->claim_commands("A1", at(10), policy, choose_all);
    REQUIRE(first);
    REQUIRE(first.value->size() == 1);
    CHECK(first.value->front().id == *id.value);
    CHECK(first.value->front().state == command_state::sent);
    CHECK(first.value->front().attempts == 1);
    CHECK(first.value->front().sent_at == at(10));
    CHECK(first.value->front().kind == "time-sync");

    auto inside = store->claim_commands("A1", at(69), policy, choose_all);
    REQUIRE(inside);
    CHECK(inside.value->empty());

    auto second = store->claim_commands("A1", at(70), policy, choose_all);
    REQUIRE(second);
    REQUIRE(second.value->size() == 1);
    CHECK(second.value->front().attempts == 2);

    auto third = store->claim_commands("A1", at(130), policy, choose_all);
    REQUIRE(third);
    REQUIRE(third.value->size() == 1);
    CHECK(third.value->front().attempts == 3);

    // At the cap it stays "sent" while a result may still arrive...
    auto waiting = store->claim_commands("A1", at(189), policy, choose_all);
    REQUIRE(waiting);
    CHECK(waiting.value->empty());
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    CHECK(listed.value->front().state == command_state::sent);

    // ...and expires once the timeout passes without one.
    auto after = store->claim_commands("A1", at(190), policy, choose_all);
    REQUIRE(after);
    CHECK(after.value->empty());
    listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK(listed.value->front().state == command_state::expired);
    CHECK(listed.value->front().attempts == 3);
}

TEST_CASE("Only the commands the chooser picks go out, in the order it gives",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<std::string> ids;
    for (auto text : {"REBOOT", "INFO", "BAD\nCOMMAND", "CHECK"}) {
        auto id = store->enqueue_command("A1", text, "admin", at(0));
        REQUIRE(id);
        ids.push_back(*id.value);
    }
    REQUIRE(store->enqueue_command("B2", "LOG", "admin", at(0)));

    std::vector<std::string> offered_texts;
    auto claimed = store->claim_commands("A1", at(1), policy, [&](const auto& offered) {
        for (const auto& c : offered) {
            offered_texts.push_back(c.text);
        }
        // CHECK then REBOOT (last), INFO left for a later poll; an id never offered and a
        // repeated id are ignored.
        return command_choice{{ids[3], ids[0], "12345", ids[3]}, {ids[2]}};
    });
    REQUIRE(claimed);
    CHECK(offered_texts == std::vector<std::string>{"REBOOT", "INFO", "BAD\nCOMMAND", "CHECK"});
    CHECK(ids_of(*claimed.value) == std::vector<std::string>{ids[3], ids[0]});

    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 4);
    CHECK(listed.value->at(0).state == command_state::sent);
    CHECK(listed.value->at(1).state == command_state::queued);
    CHECK(listed.value->at(2).state == command_state::unsendable);
    CHECK(listed.value->at(3).state == command_state::sent);
    CHECK(listed.value->at(3).attempts == 1);

    auto next = store->claim_commands("A1", at(2), policy, choose_all);
    REQUIRE(next);
    CHECK(ids_of(*next.value) == std::vector<std::string>{ids[1]});
}

TEST_CASE("A chooser built on build_command_batch claims exactly the reply's commands",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    for (auto text : {"REBOOT", "INFO", "BAD\nCOMMAND", "CHECK"}) {
        REQUIRE(store->enqueue_command("A1", text, "admin", at(0)));
    }
    protocol::command_batch batch;
    auto claimed = store->claim_commands("A1", at(1), policy, [&](const auto& offered) {
        std::vector<protocol::device_command> queue;
        for (const auto& c : offered) {
            queue.push_back({c.id, c.text});
        }
        batch = protocol::build_command_batch(queue);
        return command_choice{batch.sent_ids, batch.unsendable};
    });
    REQUIRE(claimed);
    CHECK(batch.body == "C:2:INFO\nC:4:CHECK\nC:1:REBOOT");
    CHECK(ids_of(*claimed.value) == batch.sent_ids);
    auto next = store->claim_commands("A1", at(2), policy, choose_all);
    REQUIRE(next);
    CHECK(next.value->empty()); // all sent, BAD parked as unsendable
}

TEST_CASE("A chooser that throws leaves every command as it was", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(0)));
    CHECK_THROWS_AS(store->claim_commands("A1", at(1), policy,
                                          [](const auto&) -> command_choice {
                                              throw std::runtime_error{"chooser bug"};
                                          }),
                    std::runtime_error);
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK(listed.value->front().state == command_state::queued);
    CHECK(listed.value->front().attempts == 0);
    // The storage is still usable.
    auto claimed = store->claim_commands("A1", at(2), policy, choose_all);
    REQUIRE(claimed);
    CHECK(claimed.value->size() == 1);
}

TEST_CASE("Concurrent polls never claim the same command twice", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    constexpr int commands = 40;
    for (int i = 0; i < commands; ++i) {
        REQUIRE(store->enqueue_command("A1", fmt::format("INFO {}", i), "admin", at(0)));
    }
    std::vector<std::vector<std::string>> got(8);
    std::atomic<int> errors{0};
    {
        std::vector<std::jthread> threads;
        for (std::size_t t = 0; t < got.size(); ++t) {
            threads.emplace_back([&, t] {
                for (int poll = 0; poll < 10; ++poll) {
                    auto claimed = store->claim_commands("A1", at(1), policy, [](const auto& o) {
                        command_choice c;
                        for (std::size_t i = 0; i < std::min<std::size_t>(o.size(), 3); ++i) {
                            c.send.push_back(o[i].id);
                        }
                        return c;
                    });
                    if (!claimed) {
                        ++errors;
                        continue;
                    }
                    for (const auto& c : *claimed.value) {
                        got[t].push_back(c.id);
                    }
                }
            });
        }
    }
    CHECK(errors == 0);
    std::multiset<std::string> all;
    for (const auto& ids : got) {
        all.insert(ids.begin(), ids.end());
    }
    CHECK(all.size() == commands);
    CHECK(std::set<std::string>(all.begin(), all.end()).size() == commands);
}

TEST_CASE("Command results are matched by serial number and id", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto ok_id = *store->enqueue_command("A1", "INFO", "admin", at(0)).value;
    auto bad_id = *store->enqueue_command("A1", "USER ADD PIN=1", "admin", at(0)).value;
    auto other_id = *store->enqueue_command("B2", "CHECK", "admin", at(0)).value;
    REQUIRE(store->claim_commands("A1", at(1), policy, choose_all));

    std::vector<protocol::command_result> results{
        {ok_id, 0, "INFO", {{"~DeviceName", "MB460"}, {"UserCount", "12"}}, ""},
        {bad_id, -1002, "USER", {}, ""},
        {"999999", 0, "DATA", {}, ""},    // unknown id
        {other_id, 0, "CHECK", {}, ""},   // another device's command
        {"0" + ok_id, 0, "INFO", {}, ""}, // not the id that was sent
        {ok_id, 0, "INFO", {}, ""},       // duplicate
    };
    auto matched = store->record_command_results("A1", results, at(2));
    REQUIRE(matched);
    CHECK(*matched.value ==
          std::vector<result_match>{result_match::matched, result_match::matched,
                                    result_match::unmatched, result_match::unmatched,
                                    result_match::unmatched, result_match::duplicate});

    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 2);
    const auto& ok = listed.value->at(0);
    CHECK(ok.state == command_state::done);
    CHECK(ok.return_code == 0);
    CHECK(ok.result_command == "INFO");
    CHECK(ok.result_info == "~DeviceName=MB460\nUserCount=12");
    CHECK(ok.result_at == at(2));
    const auto& bad = listed.value->at(1);
    CHECK(bad.state == command_state::failed);
    CHECK(bad.return_code == -1002);

    auto other = store->list_commands("B2");
    REQUIRE(other);
    CHECK(other.value->front().state == command_state::queued);

    // Every result is kept in the log, matched or not.
    auto log = store->list_command_results({.serial_number = "A1"});
    REQUIRE(log);
    REQUIRE(log.value->size() == results.size());
    CHECK(log.value->at(0).result == results[0]);
    CHECK(log.value->at(0).match == result_match::matched);
    CHECK(log.value->at(2).result.id == "999999");
    CHECK(log.value->at(2).match == result_match::unmatched);
    CHECK(log.value->at(5).match == result_match::duplicate);

    SECTION("a Shell result keeps its content")
    {
        auto shell_id = *store->enqueue_command("A1", "SHELL ls", "admin", at(3)).value;
        std::vector<protocol::command_result> shell{{shell_id, 0, "Shell", {}, "a\n\nb"}};
        auto r = store->record_command_results("A1", shell, at(4));
        REQUIRE(r);
        CHECK(r.value->front() == result_match::matched);
        auto cmds = store->list_commands("A1");
        REQUIRE(cmds);
        CHECK(cmds.value->back().result_content == "a\n\nb");
        CHECK(cmds.value->back().state == command_state::done);
    }
}

TEST_CASE("list_commands returns every pending command and the latest finished ones",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(
            *store->enqueue_command("A1", fmt::format("INFO {}", i), "admin", at(i)).value);
    }
    REQUIRE(store->claim_commands("A1", at(10), policy, [&](const auto&) {
        return command_choice{{ids[0], ids[1], ids[2]}, {}};
    }));
    std::vector<protocol::command_result> results{
        {ids[0], 0, "INFO", {}, ""}, {ids[1], 0, "INFO", {}, ""}, {ids[2], -1, "INFO", {}, ""}};
    REQUIRE(store->record_command_results("A1", results, at(11)));
    auto listed = store->list_commands("A1", 2);
    REQUIRE(listed);
    CHECK(ids_of(*listed.value) == std::vector<std::string>{ids[1], ids[2], ids[3], ids[4]});
    auto pending_only = store->list_commands("A1", 0);
    REQUIRE(pending_only);
    CHECK(ids_of(*pending_only.value) == std::vector<std::string>{ids[3], ids[4]});
}

TEST_CASE("A pending command of the same kind is returned instead of queueing another",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    const std::string text = "SET OPTIONS DateTime=000000000";
    auto first =
        store->enqueue_command_unless_pending("A1", text, "time-sync: drift", "time-sync", at(1));
    REQUIRE(first);
    CHECK(first.value->created);
    CHECK(protocol::is_valid_command_id(first.value->id));
    auto second = store->enqueue_command_unless_pending("A1", text, "time-sync: schedule",
                                                        "time-sync", at(2));
    REQUIRE(second);
    CHECK_FALSE(second.value->created);
    CHECK(second.value->id == first.value->id);

    // Another device, or a command of another kind, does not count.
    auto other_device =
        store->enqueue_command_unless_pending("B2", text, "time-sync: drift", "time-sync", at(2));
    REQUIRE(other_device);
    CHECK(other_device.value->created);
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(0)));
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 2);
    CHECK(listed.value->front().kind == "time-sync: drift");
    CHECK(listed.value->front().text == text);
    CHECK(listed.value->front().created_at == at(1));

    // Sent and not answered is still pending.
    REQUIRE(store->claim_commands("A1", at(3), policy, choose_all));
    auto while_sent =
        store->enqueue_command_unless_pending("A1", text, "time-sync: x", "time-sync", at(4));
    REQUIRE(while_sent);
    CHECK_FALSE(while_sent.value->created);
    CHECK(while_sent.value->id == first.value->id);

    // Once it is done a new one is queued; the same once that one fails.
    std::vector<protocol::command_result> ok{{first.value->id, 0, "SET OPTIONS", {}, ""}};
    REQUIRE(store->record_command_results("A1", ok, at(5)));
    auto third =
        store->enqueue_command_unless_pending("A1", text, "time-sync: x", "time-sync", at(6));
    REQUIRE(third);
    CHECK(third.value->created);
    CHECK(third.value->id != first.value->id);
    REQUIRE(store->claim_commands("A1", at(7), policy, choose_all));
    std::vector<protocol::command_result> failed{{third.value->id, -1, "SET OPTIONS", {}, ""}};
    REQUIRE(store->record_command_results("A1", failed, at(8)));
    auto fourth =
        store->enqueue_command_unless_pending("A1", text, "time-sync: x", "time-sync", at(9));
    REQUIRE(fourth);
    CHECK(fourth.value->created);
    CHECK(fourth.value->id != third.value->id);
}

TEST_CASE("A command's text is replaced by the one it went out with, for its own device only",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto id =
        store->enqueue_command("A1", "SET OPTIONS DateTime=000000000", "time-sync: boot", at(1));
    REQUIRE(id);
    REQUIRE(store->set_command_text("A1", *id.value, "SET OPTIONS DateTime=583080894"));
    // Another device's id, or an id this storage never hands out, changes nothing.
    REQUIRE(store->set_command_text("B2", *id.value, "SET OPTIONS DateTime=1"));
    REQUIRE(store->set_command_text("A1", "x-1", "SET OPTIONS DateTime=2"));
    auto found = store->find_command("A1", *id.value);
    REQUIRE(found);
    REQUIRE(*found.value);
    CHECK((*found.value)->text == "SET OPTIONS DateTime=583080894");
    CHECK((*found.value)->kind == "time-sync: boot");
    CHECK((*found.value)->state == command_state::queued);
}

TEST_CASE("A kind prefix is compared literally, with no LIKE wildcards or case folding",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto original =
        store->enqueue_command_unless_pending("A1", "CHECK", "time-sync: a", "time-sync", at(1));
    REQUIRE(original);
    REQUIRE(original.value->created);
    for (std::string prefix : {"time_sync", "%", "_", "time-sync%", "TIME-SYNC", "time-sync: ab"}) {
        INFO(prefix);
        auto r =
            store->enqueue_command_unless_pending("A1", "CHECK", prefix + " kind", prefix, at(2));
        REQUIRE(r);
        CHECK(r.value->created);
    }
    auto same = store->enqueue_command_unless_pending("A1", "CHECK", "x", "time-sync: a", at(3));
    REQUIRE(same);
    CHECK_FALSE(same.value->created);
    CHECK(same.value->id == original.value->id);
}

TEST_CASE("Concurrent time-sync requests through two storages on one file queue one command",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    std::array stores{open_store(*backend), reopen_store(*backend)};
    std::vector<enqueued_command> got(8);
    std::atomic<int> errors{0};
    {
        std::atomic<bool> go{false};
        std::vector<std::jthread> threads;
        for (std::size_t t = 0; t < got.size(); ++t) {
            threads.emplace_back([&, t] {
                while (!go) {
                    std::this_thread::yield();
                }
                auto r = stores[t % 2]->enqueue_command_unless_pending(
                    "A1", "SET OPTIONS DateTime=000000000", fmt::format("time-sync: {}", t),
                    "time-sync", at(1));
                if (r) {
                    got[t] = *r.value;
                } else {
                    ++errors;
                }
            });
        }
        go = true;
    }
    CHECK(errors == 0);
    CHECK(std::count_if(got.begin(), got.end(), [](const auto& c) { return c.created; }) == 1);
    for (const auto& c : got) {
        CHECK(c.id == got.front().id);
    }
    auto listed = stores[0]->list_commands("A1");
    REQUIRE(listed);
    CHECK(listed.value->size() == 1);
}

TEST_CASE("find_command returns one command of a device by id", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto id = store->enqueue_command("A1", "INFO", "admin", at(5));
    REQUIRE(id);
    REQUIRE(store->claim_commands("A1", at(6), policy, choose_all));

    auto found = store->find_command("A1", *id.value);
    REQUIRE(found);
    REQUIRE(found.value->has_value());
    const auto& c = **found.value;
    CHECK(c.id == *id.value);
    CHECK(c.serial_number == "A1");
    CHECK(c.text == "INFO");
    CHECK(c.kind == "admin");
    CHECK(c.state == command_state::sent);
    CHECK(c.created_at == at(5));
    CHECK(c.sent_at == at(6));
    CHECK(c.attempts == 1);

    for (std::string other : {std::string{"999"}, "0" + *id.value, std::string{"abc"},
                              std::string{""}, std::string{"-1"}}) {
        INFO(other);
        auto missing = store->find_command("A1", other);
        REQUIRE(missing);
        CHECK_FALSE(missing.value->has_value());
    }
    auto other_device = store->find_command("B2", *id.value);
    REQUIRE(other_device);
    CHECK_FALSE(other_device.value->has_value());
}
