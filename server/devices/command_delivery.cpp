#include "protocol/command.hpp"
#include "protocol/devicecmd.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/events/event_stream.hpp"
#include "server/observability/logger.hpp"
#include "server/records/punch_format.hpp"

#include <boost/json/object.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace adms::server {
namespace {

namespace json = boost::json;

std::chrono::sys_seconds to_seconds(instant t)
{
    return std::chrono::floor<std::chrono::seconds>(t);
}

// What storing a devicecmd body found: how each result matched, and the commands they answer.
struct results_outcome {
    std::vector<result_match> matches;
    std::vector<queued_command> commands;
};

// What a devicecmd body announces: per matched result, command.completed or command.failed, or
// for a time sync device.time_synced or device.time_sync_failed.
struct result_announcer {
    const event_stream& events;
    std::string device_id;
    tz::zone zone;
    std::vector<published_event> staged;
};

json::object result_data(const result_announcer& a, const std::string& sn,
                         const protocol::command_result& r, const queued_command& c,
                         instant received)
{
    json::object data;
    data["device"] = a.device_id;
    data["sn"] = sn;
    data["command_id"] = c.id;
    data["kind"] = c.kind;
    data["return"] = r.return_code;
    data["sent_at"] =
        c.sent_at ? json::value(format_iso(*c.sent_at, a.zone, true)) : json::value(nullptr);
    data["result_at"] = format_iso(received, a.zone, true);
    if (!is_time_sync(c)) {
        data["command"] = c.text;
        data["result_command"] = r.command;
    } else {
        data["zone"] = std::string{a.zone.name()};
    }
    return data;
}

// Stages the events of the matched results.
storage_status announce_results(write_tx& tx, result_announcer& a, const std::string& sn,
                                const protocol::parse_result<protocol::command_result>& parsed,
                                const results_outcome& outcome, instant received)
{
    std::vector<event> events;
    for (std::size_t i = 0; i < parsed.records.size() && i < outcome.matches.size(); ++i) {
        const auto& r = parsed.records[i];
        auto c = std::find_if(outcome.commands.begin(), outcome.commands.end(),
                              [&](const queued_command& q) { return q.id == r.id; });
        if (outcome.matches[i] != result_match::matched || c == outcome.commands.end()) {
            continue;
        }
        std::string type =
            is_time_sync(*c)
                ? (r.return_code == 0 ? "device.time_synced" : "device.time_sync_failed")
                : (r.return_code >= 0 ? "command.completed" : "command.failed");
        events.push_back({std::move(type), sn, result_data(a, sn, r, *c, received)});
    }
    return a.events.stage(tx, events, a.staged);
}

// Records a devicecmd body's results, the INFO options they carry and its rejected lines, and
// finds the commands the results answer (through `store`), to tell time syncs.
storage_result<results_outcome>
store_results(write_tx& tx, database& store, const std::string& sn,
              const protocol::parse_result<protocol::command_result>& parsed, instant received)
{
    auto matches = tx.commands().record_command_results(sn, parsed.records, received);
    if (!matches) {
        return matches.error;
    }
    for (const auto& r : parsed.records) {
        if (!r.info.empty()) {
            if (auto stored = tx.devices().store_device_options(sn, r.info, received); !stored) {
                return stored.error;
            }
        }
    }
    if (!parsed.rejected.empty()) {
        if (auto kept =
                tx.uploads().store_rejected_lines(sn, "devicecmd", parsed.rejected, received);
            !kept) {
            return kept.error;
        }
    }
    // The commands the results answer (one indexed look-up each), to tell time syncs.
    std::vector<queued_command> commands;
    for (const auto& r : parsed.records) {
        auto found = store.commands().find_command(sn, r.id);
        if (!found) {
            return found.error;
        }
        if (*found.value) {
            commands.push_back(std::move(**found.value));
        }
    }
    return results_outcome{std::move(*matches.value), std::move(commands)};
}

// store_results and, with `announce`, the events of the matched results: all or nothing.
storage_result<results_outcome>
store_and_announce(write_tx& tx, database& store, const std::string& sn,
                   const protocol::parse_result<protocol::command_result>& parsed, instant received,
                   result_announcer* announce)
{
    std::optional<results_outcome> outcome;
    auto stored = tx.atomic([&]() -> storage_status {
        auto found = store_results(tx, store, sn, parsed, received);
        if (!found) {
            return found.error;
        }
        outcome = std::move(*found.value);
        return announce ? announce_results(tx, *announce, sn, parsed, *outcome, received)
                        : storage_status{std::monostate{}};
    });
    if (!stored) {
        return stored.error;
    }
    return std::move(*outcome);
}

} // namespace

using namespace device_internal;

std::optional<std::uint64_t> device_service::claim_due(const std::string& serial_number,
                                                       instant now)
{
    std::lock_guard lock{mutex_};
    auto it = devices_.find(serial_number);
    if (it == devices_.end()) {
        return std::uint64_t{0}; // unknown here: let storage decide
    }
    if (now < it->second.next_claim) {
        return std::nullopt;
    }
    return it->second.queued_generation;
}

void device_service::note_claimed(const std::string& serial_number, std::uint64_t generation,
                                  bool empty, instant now)
{
    std::lock_guard lock{mutex_};
    auto it = devices_.find(serial_number);
    if (it == devices_.end() || it->second.queued_generation != generation) {
        return; // a command was queued meanwhile: the next poll claims
    }
    // A command sent now or earlier without a result becomes sendable again resend_after after
    // it was sent: no later than resend_after from now.
    it->second.next_claim = empty ? now + config_.command_resend_after : instant{};
}

void device_service::note_queued(const std::string& serial_number)
{
    std::lock_guard lock{mutex_};
    // A device not seen yet claims at its first poll anyway.
    if (auto it = devices_.find(serial_number); it != devices_.end()) {
        ++it->second.queued_generation;
        it->second.next_claim = instant{};
    }
}

std::optional<std::string> device_service::poll_sync_reason(const device_view& device,
                                                            const protocol::iclock_query& query,
                                                            clock::time_point now)
{
    const auto& sn = query.serial_number;
    std::optional<std::string> reason;
    if (device.is_new) {
        reason = "first contact";
    }
    if (query.info && !query.info->empty()) {
        update_record(sn, [&](device_record& r) {
            r.info = *query.info;
            r.info_at = to_instant(now);
        });
        if (!reason) {
            reason = "boot";
        }
    }
    if (!reason) {
        device_sync_state state;
        if (device.record.time_sync_sent_at) {
            state.last_sync = to_seconds(*device.record.time_sync_sent_at);
        }
        if (auto due = periodic_sync_due(state, device.schedule, device.zone,
                                         std::chrono::floor<std::chrono::seconds>(now))) {
            reason = std::string{describe(*due)};
        }
    }
    return reason;
}

boost::asio::awaitable<std::string>
device_service::send_commands(const device_view& device,
                              const std::vector<queued_command>& commands)
{
    const auto& sn = device.record.serial_number;
    stats_.commands_sent(commands.size());
    // A time sync's DateTime is the device's local time at a whole second, and the reply goes
    // out at that second: the device's clock is then right to within the delivery time.
    bool sets_clock = std::any_of(commands.begin(), commands.end(),
                                  [](const queued_command& c) { return is_time_sync(c); });
    auto send_time = sets_clock ? co_await at_next_second() : round_to_second(clock::now());
    auto device_local = device.zone.to_local(send_time);
    std::string body;
    for (const auto& command : commands) {
        std::string text = command.text;
        if (is_time_sync(command)) {
            text = time_sync_command(device.verb, device_local);
            note_sent_text({sn, command.id, text});
            stats_.time_sync(sync_outcome::sent);
            log_time_sent(
                sn, device.zone, send_time, text,
                command.kind.substr(std::min(command.kind.size(), time_sync_kind.size() + 2)));
        }
        // The claim checked every line; a time sync's text is ours.
        auto line = protocol::render_command({command.id, text});
        if (!line) {
            continue;
        }
        if (!body.empty()) {
            body += '\n';
        }
        body += *line;
    }
    co_return body;
}

boost::asio::awaitable<http_response> device_service::poll(const http_request& request,
                                                           const protocol::iclock_query& query)
{
    auto device = touch(query, request);
    const auto& sn = query.serial_number;
    if (!device.record.approved) {
        if (device.is_new) {
            save_device(sn);
        }
        co_return text_response(200, "OK");
    }

    auto now = request.received_at;
    auto reason = poll_sync_reason(device, query, now);
    if (reason) {
        co_await queue_time_sync(device, *reason, now);
        save_device(sn);
    } else if (device.is_new) {
        save_device(sn);
    }

    if (!storage_healthy()) {
        // Polls keep working while storage is down: nothing to send is a safe answer, and no
        // claim waits on a lock or a full disk.
        co_return text_response(200, "OK");
    }
    // An idle device's poll (the common case by far) answers from memory.
    auto claim_now = to_instant(clock::now());
    auto generation = claim_due(sn, claim_now);
    if (!generation) {
        co_return text_response(200, "OK");
    }
    resend_policy policy;
    policy.resend_after = config_.command_resend_after;
    policy.max_attempts = config_.command_max_attempts;
    auto claimed = co_await write([&](write_tx& tx) {
        return tx.commands().claim_commands(
            sn, claim_now, policy, [](const std::vector<queued_command>& queue) {
                std::vector<protocol::device_command> commands;
                commands.reserve(queue.size());
                for (const auto& c : queue) {
                    commands.push_back({c.id, c.text});
                }
                auto batch = protocol::build_command_batch(commands);
                return command_choice{batch.sent_ids, batch.unsendable};
            });
    });
    if (!claimed) {
        // Polls keep working while storage is down: nothing to send is a safe answer.
        storage_failure("claiming commands", claimed.error);
        co_return text_response(200, "OK");
    }
    storage_ok();
    note_claimed(sn, *generation, claimed.value->empty(), claim_now);
    if (claimed.value->empty()) {
        co_return text_response(200, "OK");
    }

    auto body = co_await send_commands(device, *claimed.value);
    co_return text_response(200, body.empty() ? std::string{"OK"} : std::move(body));
}

void device_service::note_time_sync_result(const std::string& serial_number,
                                           const protocol::command_result& r, instant received)
{
    const auto& sn = serial_number;
    stats_.time_sync(r.return_code == 0 ? sync_outcome::confirmed : sync_outcome::refused);
    if (r.return_code == 0) {
        update_record(sn, [&](device_record& rec) {
            rec.time_sync_confirmed_at = received;
            rec.time_sync_error.clear();
        });
        log_.event("time_sync_confirmed",
                   fmt::format("\xE2\x9C\x85 Device {} confirmed time sync (command {})",
                               escape_for_log(sn), escape_for_log(r.id)),
                   {{"sn", sn}, {"command_id", r.id}});
    } else {
        std::string why = fmt::format("Return={} ({})", r.return_code,
                                      protocol::describe_return_code(r.return_code));
        update_record(sn, [&](device_record& rec) { rec.time_sync_error = why; });
        log_.event("time_sync_failed",
                   fmt::format("\xE2\x9D\x8C Device {} refused time sync (command {}): {}",
                               escape_for_log(sn), escape_for_log(r.id), why),
                   {{"sn", sn}, {"command_id", r.id}, {"error", why}});
    }
}

boost::asio::awaitable<http_response>
device_service::command_results(const http_request& request, const protocol::iclock_query& query)
{
    auto device = touch(query, request);
    if (!write_allowed()) {
        co_return storage_unavailable();
    }
    const auto& sn = query.serial_number;
    auto received = to_instant(request.received_at);
    auto parsed = protocol::parse_devicecmd(request.body);

    result_announcer announce{events_, api_id(device.record), device.zone, {}};
    bool announcing = events_.active();
    auto result = co_await write([&](write_tx& tx) {
        return store_and_announce(tx, store_, sn, parsed, received,
                                  announcing ? &announce : nullptr);
    });
    if (result) {
        events_.publish(announce.staged);
    }
    if (!result) {
        co_return storage_failure(fmt::format("recording command results from {}", sn),
                                  result.error);
    }
    storage_ok();
    for (const auto& r : parsed.records) {
        if (!r.info.empty()) {
            merge_options(sn, r.info);
        }
    }

    bool changed = false;
    bool confirmed_sync = false;
    std::optional<instant> confirmed_sync_sent_at;
    std::size_t acknowledged = 0;
    std::size_t failed = 0;
    for (std::size_t i = 0; i < parsed.records.size(); ++i) {
        const auto& r = parsed.records[i];
        auto command = std::find_if(result.value->commands.begin(), result.value->commands.end(),
                                    [&](const queued_command& c) { return c.id == r.id; });
        bool matched =
            i < result.value->matches.size() && result.value->matches[i] == result_match::matched;
        if (matched) {
            ++(r.return_code >= 0 ? acknowledged : failed);
        }
        if (command == result.value->commands.end() || !matched || !is_time_sync(*command)) {
            continue;
        }
        changed = true;
        note_time_sync_result(sn, r, received);
        if (r.return_code == 0) {
            confirmed_sync_sent_at = command->sent_at;
            confirmed_sync = true;
        }
    }
    stats_.command_results(acknowledged, failed);
    // Wake the admin requests waiting on these commands once the registry shows the outcome.
    for (std::size_t i = 0; i < parsed.records.size() && i < result.value->matches.size(); ++i) {
        if (result.value->matches[i] == result_match::matched) {
            waiters_.notify(command_waiters::key(sn, parsed.records[i].id));
        }
    }
    for (const auto& line : parsed.rejected) {
        log_.event("rejected_line",
                   fmt::format("Rejected devicecmd line {} from {}: {}", line.line_number,
                               escape_for_log(sn), line.reason),
                   {{"sn", sn}, {"reason", line.reason}});
    }
    if (changed) {
        save_device(sn);
    }
    if (confirmed_sync) {
        co_await watch_drift(sn, received, [&](drift_tracker& tracker) {
            tracker.note_sync(confirmed_sync_sent_at, received);
        });
    }
    co_return text_response(200, "OK");
}

boost::asio::awaitable<storage_result<std::string>>
device_service::queue_command(const std::string& serial_number, std::string text, std::string kind)
{
    auto now = to_instant(clock::now());
    auto queued = co_await write([&](write_tx& tx) {
        return tx.commands().enqueue_command(serial_number, text, kind, now);
    });
    if (!queued) {
        storage_failure("queueing a command", queued.error);
        co_return queued;
    }
    storage_ok();
    note_queued(serial_number);
    stats_.commands_queued(1);
    log_.event("command_queued",
               fmt::format("Command {} queued for device {} ({}): {}", *queued.value,
                           escape_for_log(serial_number), escape_for_log(kind),
                           escape_for_log(text.substr(0, 120))),
               {{"sn", serial_number}, {"command_id", *queued.value}, {"kind", kind}});
    co_return queued;
}

void device_service::note_sent_text(sent_text sent)
{
    std::lock_guard lock{mutex_};
    sent_texts_.push_back(std::move(sent));
}

void device_service::write_sent_texts(write_tx& tx)
{
    std::vector<sent_text> texts;
    {
        std::lock_guard lock{mutex_};
        texts = std::exchange(sent_texts_, {});
    }
    std::vector<sent_text> failed;
    for (auto& t : texts) {
        if (auto stored = tx.commands().set_command_text(t.serial_number, t.id, t.text); !stored) {
            log_.event("error", fmt::format("Recording the text of command {} of {} failed: {}",
                                            escape_for_log(t.id), escape_for_log(t.serial_number),
                                            stored.error.message));
            failed.push_back(std::move(t));
        }
    }
    if (!failed.empty()) {
        std::lock_guard lock{mutex_};
        // Written in order: a command re-sent meanwhile keeps its newer text.
        failed.insert(failed.end(), std::make_move_iterator(sent_texts_.begin()),
                      std::make_move_iterator(sent_texts_.end()));
        sent_texts_ = std::move(failed);
    }
}

} // namespace adms::server
