#include "server/admin/exports_api.hpp"

#include "protocol/civil_time.hpp"
#include "server/admin/admin_support.hpp"
#include "server/exports/export_service.hpp"
#include "server/records/punch_format.hpp"

#include <fmt/format.h>

namespace adms::server {
namespace {

json::object run_json(const export_run& run, const tz::zone& zone)
{
    return {{"date", protocol::format_civil_date(run.day)},
            {"file", run.file},
            {"rows", run.rows},
            {"bytes", run.bytes},
            {"finished_at", format_iso(run.finished_at, zone, true)},
            {"trigger", run.scheduled ? "scheduled" : "on_demand"}};
}

json::object view_json(const export_view& v, const tz::zone& zone)
{
    json::value last_completed = nullptr;
    if (v.last_completed_day) {
        last_completed = protocol::format_civil_date(*v.last_completed_day);
    }
    json::value last_run = nullptr;
    if (v.last_run) {
        last_run = run_json(*v.last_run, zone);
    }
    json::value last_error = nullptr;
    if (!v.last_error.empty()) {
        last_error = v.last_error;
    }
    return {{"name", v.name},
            {"at", format_export_at(v.settings.at)},
            {"time_zone", zone.name()},
            {"directory", v.settings.directory},
            {"format", v.settings.format},
            {"last_completed_day", std::move(last_completed)},
            {"next_day", protocol::format_civil_date(v.next_day)},
            {"next_run", format_iso(v.next_run, zone)},
            {"last_run", std::move(last_run)},
            {"last_error", std::move(last_error)}};
}

} // namespace

input_result<std::chrono::local_days> parse_export_run(std::string_view body)
{
    auto parsed = parse_json_object(body, false);
    if (!parsed) {
        return parsed.error;
    }
    if (auto unknown = reject_unknown_fields(*parsed.value, {"date"})) {
        return *unknown;
    }
    auto date = optional_string(*parsed.value, "date");
    if (!date) {
        return date.error;
    }
    constexpr std::string_view day_format =
        "the devices' wall-clock day to export, YYYY-MM-DD (e.g. 2026-11-30)";
    if (!*date.value) {
        return input_error{"date", fmt::format("required: {}", day_format)};
    }
    auto day = protocol::parse_civil_date(**date.value);
    if (!day) {
        return input_error{"date", fmt::format("expected {}", day_format)};
    }
    return *day;
}

route_handler exports_api::route(handler h)
{
    return [this, h](const http_request& request, const route_match& match) {
        return (this->*h)(request, match);
    };
}

boost::asio::awaitable<http_response> exports_api::list(const http_request&, const route_match&)
{
    json::array data;
    for (const auto& v : exports_.list()) {
        data.push_back(view_json(v, exports_.zone()));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> exports_api::run(const http_request& request,
                                                       const route_match& match)
{
    const auto& name = match.param("name");
    if (!exports_.has_export(name)) {
        co_return error_reply(404, fmt::format("Export not found: {}", name));
    }
    auto day = parse_export_run(request.body);
    if (!day) {
        co_return input_reply(day.error);
    }
    auto outcome = co_await exports_.run_now(name, *day.value);
    switch (outcome.error) {
    case export_error::none:
        break;
    case export_error::unknown_export:
        co_return error_reply(404, outcome.message);
    case export_error::storage:
        co_return error_reply(503, "storage unavailable: " + outcome.message);
    case export_error::file:
        co_return error_reply(500, outcome.message);
    case export_error::stopping:
        co_return error_reply(503, outcome.message);
    }
    const auto& run = *outcome.run;
    json::object body{{"success", true}, {"name", run.name}};
    for (const auto& field : run_json(run, exports_.zone())) {
        body.emplace(field.key(), field.value());
    }
    co_return json_reply(200, body);
}

} // namespace adms::server
