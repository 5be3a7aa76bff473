#include "protocol/text.hpp"
#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/records/punch_format.hpp"
#include "server/net.hpp"
#include "server/storage/blocking_pool.hpp"

#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>

namespace adms::server {
namespace {

// Punch pages: the default and largest `limit`, and the rows per CSV chunk.
constexpr std::size_t default_punch_limit = 1000;
constexpr std::size_t max_punch_limit = 10000;
constexpr std::size_t csv_page_rows = 2000;

// What the query of GET /punches(.csv) asks for, or the reply refusing it.
struct punch_request {
    punch_filter filter;
    std::optional<std::size_t> csv_limit; // a CSV export's `limit`: the whole export's rows
    std::optional<http_response> refused;
};

// The devices named by `device` (repeatable, or comma-separated; each an alias or SN).
std::optional<http_response> add_devices(punch_filter& filter, const std::string& value,
                                         const device_service& devices)
{
    for (auto id : protocol::text::split(value, ',')) {
        auto device = devices.find_device(id);
        if (!device) {
            return error_reply(404, fmt::format("Device not found: {}", id));
        }
        filter.serial_numbers.push_back(device->record.serial_number);
    }
    return std::nullopt;
}

punch_request read_punch_request(const query_params& params, bool csv,
                                 const device_service& devices)
{
    punch_request out;
    auto& filter = out.filter;
    filter.limit = default_punch_limit;
    auto refuse = [&](input_error error) {
        out.refused = input_reply(error);
        return out;
    };
    for (const auto& [key, value] : params) {
        if (key == "device") {
            if (auto refused = add_devices(filter, value, devices)) {
                out.refused = std::move(refused);
                return out;
            }
        } else if (key == "pin") {
            filter.pin = value;
        } else if (key == "from" || key == "to") {
            auto bound = parse_time_bound(value, key == "to");
            if (!bound.bound) {
                return refuse({key, bound.error});
            }
            (key == "from" ? filter.local_from : filter.local_to) = bound.bound->local;
            (key == "from" ? filter.utc_from : filter.utc_to) = bound.bound->utc;
        } else if (key == "after") {
            auto after = parse_number(value);
            if (!after || *after < 0) {
                return refuse({"after", "must be a cursor from a previous page's next"});
            }
            filter.after_id = *after;
        } else if (key == "limit") {
            auto limit = parse_number(value);
            if (!limit || *limit < 1 ||
                (!csv && *limit > static_cast<long long>(max_punch_limit))) {
                return refuse(
                    {"limit", fmt::format("must be from 1 to {}", csv ? "any size" : "10000")});
            }
            filter.limit = static_cast<std::size_t>(*limit);
            out.csv_limit = filter.limit;
        } else if (key == "quarantined") {
            auto flag = parse_flag(value);
            if (!flag) {
                return refuse({"quarantined", "must be true or false"});
            }
            filter.include_quarantined = *flag;
        }
    }
    return out;
}

// The API id and zone of a punch's device (its SN and UTC for a device no longer known).
using device_lookup = std::function<punch_device(const stored_punch&)>;

device_lookup make_device_lookup(const device_service& devices)
{
    auto known = std::make_shared<std::map<std::string, punch_device, std::less<>>>();
    for (const auto& d : devices.devices()) {
        known->emplace(d.record.serial_number, punch_device{id_of(d), zone_of(d)});
    }
    return [known](const stored_punch& p) -> punch_device {
        if (auto it = known->find(p.serial_number); it != known->end()) {
            return it->second;
        }
        return {p.serial_number, *tz::locate_zone("UTC").value};
    };
}

// Where a CSV export is: the next page's filter and what is left to send.
struct export_state {
    punch_filter filter;
    std::optional<std::size_t> remaining;
    bool header_sent = false;
    bool done = false;
};

} // namespace

boost::asio::awaitable<http_response> admin_api::punches(const http_request&,
                                                         const route_match& match)
{
    auto asked = read_punch_request(match.query, false, devices);
    if (asked.refused) {
        co_return std::move(*asked.refused);
    }
    auto device_of = make_device_lookup(devices);
    const auto& filter = asked.filter;
    // One row more than asked tells whether another page exists (has_more is then exact).
    auto probe = filter;
    probe.limit = filter.limit + 1;
    auto rows = co_await reader.run([&] { return store.punches().query_punches(probe); });
    if (!rows) {
        co_return storage_unavailable(rows.error);
    }
    bool more = rows.value->size() > filter.limit;
    if (more) {
        rows.value->pop_back();
    }
    json::array data;
    for (const auto& p : *rows.value) {
        data.push_back(punch_json(p, device_of(p)));
    }
    auto next = rows.value->empty() ? filter.after_id : rows.value->back().id;
    co_return json_reply(200, json::object{{"success", true},
                                           {"data", std::move(data)},
                                           {"count", rows.value->size()},
                                           {"next", next},
                                           {"has_more", more}});
}

boost::asio::awaitable<http_response> admin_api::punches_csv(const http_request&,
                                                             const route_match& match)
{
    auto asked = read_punch_request(match.query, true, devices);
    if (asked.refused) {
        co_return std::move(*asked.refused);
    }
    auto device_of = make_device_lookup(devices);
    // Pages of csv_page_rows up to the last punch stored now (a stable end), streamed.
    auto last = co_await reader.run([&] { return store.punches().last_punch_id(); });
    if (!last) {
        co_return storage_unavailable(last.error);
    }
    auto state = std::make_shared<export_state>();
    state->filter = asked.filter;
    state->filter.up_to_id = *last.value;
    state->remaining = asked.csv_limit;
    http_response reply{200, "text/csv; charset=utf-8", {}, {}, {}};
    reply.headers.emplace_back("Content-Disposition", "attachment; filename=\"punches.csv\"");
    reply.stream = [this, state,
                    device_of]() -> boost::asio::awaitable<std::optional<std::string>> {
        std::string chunk;
        if (!state->header_sent) {
            state->header_sent = true;
            chunk = csv_header();
        }
        if (state->done) {
            co_return chunk;
        }
        auto page = state->filter;
        page.limit = std::min(csv_page_rows, state->remaining.value_or(csv_page_rows));
        auto rows = co_await reader.run([&] { return store.punches().query_punches(page); });
        if (!rows) {
            co_return std::nullopt;
        }
        for (const auto& p : *rows.value) {
            chunk += csv_row(p, device_of(p));
        }
        if (state->remaining) {
            *state->remaining -= rows.value->size();
        }
        if (rows.value->size() < page.limit || state->remaining == std::size_t{0}) {
            state->done = true;
        } else {
            state->filter.after_id = rows.value->back().id;
        }
        co_return chunk;
    };
    co_return reply;
}

} // namespace adms::server
