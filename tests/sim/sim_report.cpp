#include "tests/sim/sim_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

namespace adms::sim {
namespace {

// `text` as a JSON string literal (the report's strings are ASCII; control bytes are escaped).
std::string json_string(std::string_view text)
{
    std::string out = "\"";
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20) {
            out += fmt::format("\\u{:04x}", byte);
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// A finite number with `decimals` digits after the point (JSON has no NaN or infinity).
std::string number(double value, int decimals = 3)
{
    if (!std::isfinite(value)) {
        value = 0;
    }
    return fmt::format("{:.{}f}", value, decimals);
}

// `count / seconds`, 0 when no time passed.
double rate(std::uint64_t count, double seconds)
{
    return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

std::string json_distribution(const distribution& d)
{
    return fmt::format(R"({{"count": {}, "p50_ms": {}, "p99_ms": {}, "p999_ms": {}, )"
                       R"("max_ms": {}, "mean_ms": {}}})",
                       d.count, number(d.p50), number(d.p99), number(d.p999), number(d.max),
                       number(d.mean));
}

} // namespace

std::string_view step_name(timed_step step)
{
    switch (step) {
    case timed_step::connect:
        return "connect";
    case timed_step::handshake:
        return "handshake";
    case timed_step::getrequest:
        return "getrequest";
    case timed_step::attlog:
        return "attlog";
    case timed_step::devicecmd:
        return "devicecmd";
    case timed_step::getrequest_time_sync:
        return "getrequest_time_sync";
    case timed_step::connection_wait:
        return "connection_wait";
    }
    return "?";
}

double nearest_rank(const std::vector<double>& sorted, double p)
{
    if (sorted.empty()) {
        return 0;
    }
    // The epsilon keeps products like 0.99 * 200 = 198.00000000000003 on rank 198.
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size()) - 1e-9));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1];
}

distribution summarize(std::vector<double>& samples)
{
    distribution d;
    if (samples.empty()) {
        return d;
    }
    std::sort(samples.begin(), samples.end());
    d.count = samples.size();
    d.p50 = nearest_rank(samples, 0.50);
    d.p99 = nearest_rank(samples, 0.99);
    d.p999 = nearest_rank(samples, 0.999);
    d.max = samples.back();
    d.mean =
        std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
    return d;
}

std::uint64_t error_counts::total() const
{
    std::uint64_t sum = connect + timeout + reset + closed + bad_reply;
    for (const auto& [status, count] : http) {
        sum += count;
    }
    return sum;
}

void error_counts::add(const error_counts& other)
{
    connect += other.connect;
    timeout += other.timeout;
    reset += other.reset;
    closed += other.closed;
    bad_reply += other.bad_reply;
    for (const auto& [status, count] : other.http) {
        http[status] += count;
    }
}

std::string render_text(const report& r)
{
    std::string out;
    auto line = [&out]<class... Args>(fmt::format_string<Args...> format, Args&&... args) {
        fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
        out += '\n';
    };
    auto elapsed = r.elapsed_s();
    line("admsd-sim report: {} devices against {} ({}, polls every {} s, seed {})", r.devices,
         r.target, r.keep_alive ? "keep-alive" : "Connection: close", number(r.delay_s, 2), r.seed);
    line("  run          {} s of activity + {} s of drain{}", number(r.duration_s, 1),
         number(r.drain_s, 1), r.drained ? "" : " (ended with punches unacknowledged)");
    line("  devices      {} handshaken, {} clock-synced", r.devices_handshaken, r.devices_synced);
    line("  requests     {} ({}/s), {} connections", r.requests,
         number(rate(r.requests, elapsed), 1), r.connections);
    line("  punches      {} generated, {} sent, {} re-sent lines, {} acknowledged ({}/s), {} "
         "unacknowledged",
         r.punches_generated, r.punches_sent, r.punches_resent, r.punches_acknowledged,
         number(rate(r.punches_acknowledged, elapsed), 1),
         r.punches_generated - std::min(r.punches_generated, r.punches_acknowledged));
    line("  commands     {} executed", r.commands_executed);
    std::string errors =
        fmt::format("connect {}, timeout {}, reset {}, closed {}, bad reply {}", r.errors.connect,
                    r.errors.timeout, r.errors.reset, r.errors.closed, r.errors.bad_reply);
    for (const auto& [status, count] : r.errors.http) {
        errors += fmt::format(", HTTP {} {}", status, count);
    }
    line("  errors       {} ({})", r.errors.total(), errors);
    line("  latency ms   {:<11}{:>9}{:>10}{:>10}{:>10}{:>10}", "", "count", "p50", "p99", "p99.9",
         "max");
    for (std::size_t i = 0; i < timed_step_count; ++i) {
        const auto& d = r.latency_ms[i];
        auto step = static_cast<timed_step>(i);
        auto name = step == timed_step::connection_wait        ? std::string_view{"conn. wait"}
                    : step == timed_step::getrequest_time_sync ? std::string_view{"poll+sync"}
                                                               : step_name(step);
        line("               {:<11}{:>9}{:>10}{:>10}{:>10}{:>10}", name, d.count, number(d.p50),
             number(d.p99), number(d.p999), number(d.max));
    }
    line("  time sync    {} applied; |error| p50 {} ms, p99 {} ms, max {} ms; mean signed {} ms",
         r.time_sync_abs_ms.count, number(r.time_sync_abs_ms.p50), number(r.time_sync_abs_ms.p99),
         number(r.time_sync_abs_ms.max), number(r.time_sync_mean_ms));
    if (r.zone_mismatches > 0) {
        line("  warning      {} handshakes sent a TimeZone that is not --zone's offset: does the "
             "server run with the same --time-zone?",
             r.zone_mismatches);
    }
    line("  cpu          {} s user + {} s system ({}% of one core)", number(r.cpu_user_s, 2),
         number(r.cpu_system_s, 2),
         number(elapsed > 0 ? 100 * (r.cpu_user_s + r.cpu_system_s) / elapsed : 0, 1));
    if (r.exit_status == 0) {
        line("  result       PASS: every punch acknowledged");
    } else if (r.punches_acknowledged < r.punches_generated) {
        line("  result       FAIL: {} punches left unacknowledged",
             r.punches_generated - r.punches_acknowledged);
    } else {
        line("  result       FAIL: no device completed a handshake");
    }
    return out;
}

std::string render_json(const report& r)
{
    auto elapsed = r.elapsed_s();
    std::string errors = fmt::format(
        R"({{"total": {}, "connect": {}, "timeout": {}, "reset": {}, "closed": {}, "bad_reply": {})",
        r.errors.total(), r.errors.connect, r.errors.timeout, r.errors.reset, r.errors.closed,
        r.errors.bad_reply);
    for (const auto& [status, count] : r.errors.http) {
        errors += fmt::format(R"(, "http_{}": {})", status, count);
    }
    errors += "}";
    std::string endpoints = "{";
    for (auto step : {timed_step::handshake, timed_step::getrequest, timed_step::attlog,
                      timed_step::devicecmd, timed_step::getrequest_time_sync}) {
        auto i = static_cast<std::size_t>(step);
        endpoints += fmt::format("{}{}: {}", step != timed_step::handshake ? ", " : "",
                                 json_string(step_name(static_cast<timed_step>(i))),
                                 json_distribution(r.latency_ms[i]));
    }
    endpoints += "}";
    std::string out = "{\n";
    auto field = [&out](std::string_view key, const std::string& value, bool last = false) {
        out += fmt::format("  {}: {}{}\n", json_string(key), value, last ? "" : ",");
    };
    auto integer = [](std::uint64_t value) { return std::to_string(value); };
    field("target", json_string(r.target));
    field("devices", integer(r.devices));
    field("devices_handshaken", integer(r.devices_handshaken));
    field("devices_synced", integer(r.devices_synced));
    field("duration_s", number(r.duration_s));
    field("drain_s", number(r.drain_s));
    field("drained", r.drained ? "true" : "false");
    field("delay_s", number(r.delay_s));
    field("keep_alive", r.keep_alive ? "true" : "false");
    field("seed", integer(r.seed));
    field("requests", integer(r.requests));
    field("requests_per_s", number(rate(r.requests, elapsed)));
    field("connections", integer(r.connections));
    field("punches_generated", integer(r.punches_generated));
    field("punches_sent", integer(r.punches_sent));
    field("punches_resent", integer(r.punches_resent));
    field("punches_acknowledged", integer(r.punches_acknowledged));
    field("punches_unacknowledged",
          integer(r.punches_generated - std::min(r.punches_generated, r.punches_acknowledged)));
    field("punches_per_s", number(rate(r.punches_acknowledged, elapsed)));
    field("commands_executed", integer(r.commands_executed));
    field("errors", errors);
    field("connect", json_distribution(r.latency_ms[0]));
    field("connection_wait",
          json_distribution(r.latency_ms[static_cast<std::size_t>(timed_step::connection_wait)]));
    field("endpoints", endpoints);
    field("time_sync",
          fmt::format(R"({{"count": {}, "p50_abs_ms": {}, "p99_abs_ms": {}, "max_abs_ms": {}, )"
                      R"("mean_ms": {}}})",
                      r.time_sync_abs_ms.count, number(r.time_sync_abs_ms.p50),
                      number(r.time_sync_abs_ms.p99), number(r.time_sync_abs_ms.max),
                      number(r.time_sync_mean_ms)));
    field("zone_mismatches", integer(r.zone_mismatches));
    field("cpu_user_s", number(r.cpu_user_s));
    field("cpu_system_s", number(r.cpu_system_s));
    field("exit_status", std::to_string(r.exit_status), true);
    out += "}\n";
    return out;
}

} // namespace adms::sim
