#include "protocol/civil_time.hpp"
#include "protocol/devicecmd.hpp"
#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/net.hpp"
#include "server/observability/metrics.hpp"
#include "server/records/punch_format.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/timekeeping/clock_estimate.hpp"

#include <boost/asio/experimental/parallel_group.hpp>
#include <fmt/format.h>

namespace adms::server {
namespace {

// How long POST …/sync-time waits for the device by default, and at most.
constexpr int default_sync_timeout_s = 30;
constexpr int max_sync_timeout_s = 300;
// Drift history pages: the default and largest `limit`.
constexpr std::size_t default_drift_limit = 1000;
constexpr std::size_t max_drift_limit = 10000;

// The sync options of a sync-time request: ?timeout=&wait= (or the same in a JSON body).
struct sync_options {
    int timeout_s = default_sync_timeout_s;
    bool wait = true;
    std::vector<std::string> ids; // batch only
};

input_result<sync_options> read_sync_options(const query_params& params, std::string_view body,
                                             bool batch)
{
    sync_options options;
    auto parsed = parse_json_object(body, true);
    if (!parsed) {
        return parsed.error;
    }
    const auto& object = *parsed.value;
    if (auto unknown = batch ? reject_unknown_fields(object, {"ids", "timeout", "wait"})
                             : reject_unknown_fields(object, {"timeout", "wait"})) {
        return *unknown;
    }
    if (batch) {
        if (const auto* ids = object.if_contains("ids")) {
            const auto* array = ids->if_array();
            if (array == nullptr) {
                return input_error{"ids", "must be an array of device ids"};
            }
            for (const auto& item : *array) {
                if (!item.is_string()) {
                    return input_error{"ids", "must be an array of device ids (strings)"};
                }
                options.ids.emplace_back(item.as_string());
            }
        }
    }
    auto timeout = optional_integer(object, "timeout");
    if (!timeout) {
        return timeout.error;
    }
    auto wait = optional_bool(object, "wait");
    if (!wait) {
        return wait.error;
    }
    // Plain values (not optionals): g++ 12 misreports copies of optional<long long> as
    // maybe-uninitialized here.
    long long timeout_value = timeout.value->value_or(default_sync_timeout_s);
    bool wait_value = wait.value->value_or(true);
    if (const auto* text = find_param(params, "timeout")) {
        auto parsed_timeout = parse_number(*text);
        if (!parsed_timeout) {
            return input_error{"timeout", "must be a whole number of seconds"};
        }
        timeout_value = *parsed_timeout;
    }
    if (const auto* text = find_param(params, "wait")) {
        auto parsed_wait = parse_flag(*text);
        if (!parsed_wait) {
            return input_error{"wait", "must be true or false"};
        }
        wait_value = *parsed_wait;
    }
    if (timeout_value < 1 || timeout_value > max_sync_timeout_s) {
        return input_error{"timeout",
                           fmt::format("must be from 1 to {} seconds", max_sync_timeout_s)};
    }
    options.timeout_s = static_cast<int>(timeout_value);
    options.wait = wait_value;
    return options;
}

// The answer of a time sync whose command ended (done, refused, expired, unsendable); nullopt
// while it is still queued or sent.
std::optional<admin_api::sync_result> finished_sync(const queued_command& command,
                                                    const std::string& id, const tz::zone& zone)
{
    auto fail = [](unsigned status, std::string error) {
        return admin_api::sync_result{
            status, json::object{{"success", false}, {"error", std::move(error)}}};
    };
    const auto& command_id = command.id;
    switch (command.state) {
    case command_state::done:
        return admin_api::sync_result{200,
                                      json::object{
                                          {"success", true},
                                          {"message", fmt::format("[{}] Time synchronized.", id)},
                                          {"device_time", format_iso(now_instant(), zone, true)},
                                          {"command_id", command_id},
                                          {"confirmed_at", optional_time(command.result_at, zone)},
                                      }};
    case command_state::failed: {
        int code = command.return_code.value_or(-1);
        auto result = fail(500, fmt::format("[{}] Device refused the time sync: Return={} ({})", id,
                                            code, protocol::describe_return_code(code)));
        result.body["command_id"] = command_id;
        result.body["return_code"] = code;
        return result;
    }
    case command_state::expired:
    case command_state::unsendable: {
        auto result =
            fail(500, fmt::format("[{}] The time sync {} (sent {} times, no result)", id,
                                  command.state == command_state::expired ? "expired"
                                                                          : "can never be sent",
                                  command.attempts));
        result.body["command_id"] = command_id;
        return result;
    }
    case command_state::queued:
    case command_state::sent:
        break;
    }
    return std::nullopt;
}

// The query of GET /devices/{id}/drift: from/to (an instant, or a wall-clock time in the
// device's zone, earliest reading), after (a cursor) and limit.
input_result<clock_offset_query> read_drift_query(const query_params& params, const std::string& sn,
                                                  const tz::zone& zone)
{
    clock_offset_query query;
    query.serial_number = sn;
    query.limit = default_drift_limit;
    for (const auto& [key, value] : params) {
        if (key == "from" || key == "to") {
            // An instant, or a wall-clock time in the device's zone (earliest reading).
            auto bound = parse_time_bound(value, key == "to");
            if (!bound.bound) {
                return input_error{key, bound.error};
            }
            std::optional<instant> at;
            if (bound.bound->utc) {
                at = instant{*bound.bound->utc};
            } else if (auto local = protocol::parse_civil_time(bound.bound->local.value_or(""))) {
                if (auto utc = zone.to_utc(
                        *local, {tz::gap_policy::transition, tz::overlap_policy::earliest})) {
                    at = instant{*utc};
                }
            }
            if (!at) {
                return input_error{key, "not a time in the device's zone"};
            }
            (key == "from" ? query.from : query.to) = at;
        } else if (key == "after") {
            auto after = parse_number(value);
            if (!after || *after < 0) {
                return input_error{"after", "must be a cursor from a previous page's next"};
            }
            query.after_id = *after;
        } else if (key == "limit") {
            auto limit = parse_number(value);
            if (!limit || *limit < 1 || *limit > static_cast<long long>(max_drift_limit)) {
                return input_error{"limit", fmt::format("must be from 1 to {}", max_drift_limit)};
            }
            query.limit = static_cast<std::size_t>(*limit);
        }
    }
    return query;
}

} // namespace

boost::asio::awaitable<admin_api::sync_result> admin_api::sync_one(std::string requested_id,
                                                                   int timeout_s, bool wait)
{
    auto fail = [](unsigned status, std::string error) {
        return sync_result{status, json::object{{"success", false}, {"error", std::move(error)}}};
    };
    auto device = devices.find_device(requested_id);
    if (!device) {
        co_return fail(404, fmt::format("Device not found: {}", requested_id));
    }
    auto id = id_of(*device);
    const auto& sn = device->record.serial_number;
    if (!device->record.approved) {
        co_return fail(409, fmt::format("[{}] Device is not approved: POST /devices/{}/approve "
                                        "first (it gets no commands until then)",
                                        id, id));
    }
    auto queued = co_await devices.request_time_sync(sn, "on demand");
    if (!queued) {
        co_return fail(503, fmt::format("[{}] Storage unavailable: {}", id, queued.error.message));
    }
    auto command_id = queued.value->id;
    if (!wait) {
        co_return sync_result{202,
                              json::object{{"success", true},
                                           {"message", fmt::format("[{}] Time sync queued.", id)},
                                           {"command_id", command_id},
                                           {"command_state", "queued"}}};
    }
    auto zone = zone_of(*device);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{timeout_s};
    for (;;) {
        // Subscribe before reading the state, so a result recorded in between wakes us.
        auto ticket = waiters.subscribe(command_waiters::key(sn, command_id));
        auto found =
            co_await reader.run([&] { return store.commands().find_command(sn, command_id); });
        if (!found) {
            co_return fail(503,
                           fmt::format("[{}] Storage unavailable: {}", id, found.error.message));
        }
        if (!*found.value) {
            co_return fail(500, fmt::format("[{}] Time sync command {} disappeared from the queue",
                                            id, command_id));
        }
        const auto& command = **found.value;
        if (auto ended = finished_sync(command, id, zone)) {
            co_return std::move(*ended);
        }
        if (stopping) {
            auto result =
                fail(503, fmt::format("[{}] Server stopping; the time sync stays queued", id));
            result.body["command_id"] = command_id;
            co_return result;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            stats.time_sync(sync_outcome::timed_out);
            auto seen = devices.find_device(sn);
            auto since = seen ? std::chrono::duration_cast<std::chrono::seconds>(
                                    now_instant() - seen->record.last_seen)
                                    .count()
                              : -1;
            auto result = fail(
                504,
                fmt::format("[{}] Device did not confirm the time sync within {} s (command "
                            "{}, {}; last request {} s ago); it stays queued",
                            id, timeout_s, command_id,
                            command.state == command_state::sent ? "sent" : "not yet sent", since));
            result.body["command_id"] = command_id;
            result.body["command_state"] = std::string{to_string(command.state)};
            co_return result;
        }
        co_await waiters.wait(ticket, deadline);
    }
}

boost::asio::awaitable<http_response> admin_api::sync_devices(const http_request& request,
                                                              const route_match& match)
{
    auto options = read_sync_options(match.query, request.body, true);
    if (!options) {
        co_return input_reply(options.error);
    }
    auto ids = options.value->ids;
    if (ids.empty()) {
        // "Every device": the approved ones (the others receive no commands until approved).
        for (const auto& d : devices.devices()) {
            if (d.record.approved) {
                ids.push_back(id_of(d));
            }
        }
    }
    // Every device at once: the slowest one bounds the wait.
    auto executor = co_await net::this_coro::executor;
    using operation = decltype(net::co_spawn(executor, sync_one({}, 0, false), net::deferred));
    std::vector<operation> operations;
    operations.reserve(ids.size());
    for (const auto& id : ids) {
        operations.push_back(net::co_spawn(
            executor, sync_one(id, options.value->timeout_s, options.value->wait), net::deferred));
    }
    std::vector<sync_result> results;
    if (!operations.empty()) {
        auto [order, errors, values] =
            co_await net::experimental::make_parallel_group(std::move(operations))
                .async_wait(net::experimental::wait_for_all(), net::use_awaitable);
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (errors[i]) {
                values[i] =
                    sync_result{500, json::object{{"success", false}, {"error", "internal error"}}};
            }
        }
        results = std::move(values);
    }
    json::array out;
    bool all_ok = true;
    std::size_t succeeded = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        auto& body = results[i].body;
        bool ok = results[i].status == 200 || results[i].status == 202;
        all_ok = all_ok && ok;
        succeeded += ok ? 1 : 0;
        json::object item{{"id", ids[i]}, {"status", results[i].status}};
        for (auto& [key, value] : body) {
            item[key] = value;
        }
        out.push_back(std::move(item));
    }
    co_return json_reply(200, json::object{{"success", all_ok},
                                           {"succeeded", succeeded},
                                           {"failed", results.size() - succeeded},
                                           {"results", std::move(out)}});
}

boost::asio::awaitable<http_response> admin_api::sync_device(const http_request& request,
                                                             const route_match& match)
{
    // sync_one looks the device up itself (the batch shares it).
    auto options = read_sync_options(match.query, request.body, false);
    if (!options) {
        co_return input_reply(options.error);
    }
    auto result =
        co_await sync_one(match.param("id"), options.value->timeout_s, options.value->wait);
    co_return json_reply(result.status, result.body);
}

boost::asio::awaitable<http_response>
admin_api::device_time(const device_snapshot& d, const http_request&, const route_match&)
{
    const auto& sn = d.record.serial_number;
    auto now = now_instant();
    auto commands = co_await reader.run([&] { return store.commands().list_commands(sn, 50); });
    if (!commands) {
        co_return storage_unavailable(commands.error);
    }
    clock_evidence evidence;
    for (const auto& c : *commands.value) {
        if (is_time_sync(c) && c.state == command_state::done && c.sent_at && c.result_at &&
            (!evidence.sync_confirmed_at || *c.result_at > *evidence.sync_confirmed_at)) {
            evidence.sync_sent_at = c.sent_at;
            evidence.sync_confirmed_at = c.result_at;
        }
    }
    clock_estimate_params params;
    punch_filter filter;
    filter.serial_numbers = {sn};
    filter.received_from =
        now - std::chrono::duration_cast<std::chrono::milliseconds>(params.window);
    filter.include_quarantined = true; // evidence about the clock, whatever their admission
    filter.newest_first = true;
    filter.limit = params.max_samples;
    auto rows = co_await reader.run([&] { return store.punches().query_punches(filter); });
    if (!rows) {
        co_return storage_unavailable(rows.error);
    }
    for (const auto& p : *rows.value) {
        if (p.utc) {
            evidence.punches.push_back({*p.utc, p.received_at});
        }
    }
    auto estimate = estimate_device_clock(evidence, now, params);
    auto zone = zone_of(d);
    json::object o{
        {"success", true},
        {"id", id_of(d)},
        {"sn", sn},
        {"zone", d.zone_name},
        {"server_time", format_iso(now, zone, true)},
        {"source", std::string{to_string(estimate.source)}},
    };
    if (estimate.offset) {
        o["device_time"] = format_iso(now + *estimate.offset, zone, true);
        o["offset_seconds"] = std::chrono::round<std::chrono::seconds>(*estimate.offset).count();
        o["offset_ms"] = estimate.offset->count();
        o["uncertainty_seconds"] =
            std::chrono::ceil<std::chrono::seconds>(estimate.uncertainty).count();
        o["uncertainty_ms"] = estimate.uncertainty.count();
    } else {
        o["device_time"] = nullptr;
        o["offset_seconds"] = nullptr;
        o["offset_ms"] = nullptr;
        o["uncertainty_seconds"] = nullptr;
        o["uncertainty_ms"] = nullptr;
    }
    o["measured_at"] = optional_time(estimate.measured_at, zone);
    o["samples"] = estimate.samples_used;
    o["note"] = estimate.note;
    co_return json_reply(200, o);
}

boost::asio::awaitable<http_response>
admin_api::device_drift(const device_snapshot& d, const http_request&, const route_match& match)
{
    const auto& sn = d.record.serial_number;
    auto zone = zone_of(d);
    auto asked = read_drift_query(match.query, sn, zone);
    if (!asked) {
        co_return input_reply(asked.error);
    }
    const auto& query = *asked.value;
    // One row more than asked tells whether another page exists.
    auto probe = query;
    probe.limit = query.limit + 1;
    auto rows = co_await reader.run([&] { return store.clocks().list_clock_offsets(probe); });
    if (!rows) {
        co_return storage_unavailable(rows.error);
    }
    bool more = rows.value->size() > query.limit;
    if (more) {
        rows.value->pop_back();
    }
    json::array data;
    for (const auto& row : *rows.value) {
        const auto& p = row.point;
        data.push_back(json::object{
            {"id", row.id},
            {"time", format_iso(p.measured_at, zone, true)},
            {"offset_ms", p.offset_ms},
            {"offset_seconds", static_cast<double>(p.offset_ms) / 1000.0},
            {"uncertainty_ms", p.uncertainty_ms},
            {"source", p.source},
        });
    }
    const auto& watch = devices.drift_settings();
    auto threshold_s = std::chrono::duration_cast<std::chrono::seconds>(watch.threshold).count();
    json::object current{{"source", "unknown"},
                         {"offset_ms", nullptr},
                         {"uncertainty_ms", nullptr},
                         {"measured_at", nullptr}};
    bool alerting = false;
    if (auto status = devices.drift_of(sn)) {
        alerting = status->alerting;
        const auto& e = status->estimate;
        current["source"] = std::string{to_string(e.source)};
        if (e.offset) {
            current["offset_ms"] = e.offset->count();
            current["uncertainty_ms"] = e.uncertainty.count();
        }
        current["measured_at"] = optional_time(e.measured_at, zone);
    }
    auto next = rows.value->empty() ? query.after_id : rows.value->back().id;
    co_return json_reply(200, json::object{{"success", true},
                                           {"id", id_of(d)},
                                           {"sn", sn},
                                           {"zone", d.zone_name},
                                           {"watch", threshold_s > 0},
                                           {"threshold_seconds", threshold_s},
                                           {"alerting", alerting},
                                           {"current", std::move(current)},
                                           {"data", std::move(data)},
                                           {"count", rows.value->size()},
                                           {"next", next},
                                           {"has_more", more}});
}

} // namespace adms::server
