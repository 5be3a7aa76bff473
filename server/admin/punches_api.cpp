#include "protocol/text.hpp"
#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/devices/punch_devices.hpp"
#include "server/net.hpp"
#include "server/records/punch_csv.hpp"
#include "server/records/punch_format.hpp"
#include "server/storage/blocking_pool.hpp"

#include <fmt/format.h>

#include <memory>

namespace adms::server {
namespace {

// Punch pages: the default and largest `limit` (a CSV export pages by punch_csv_pages).
constexpr std::size_t default_punch_limit = 1000;
constexpr std::size_t max_punch_limit = 10000;

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
    // Pages up to the last punch stored now (a stable end), streamed.
    auto last = co_await reader.run([&] { return store.punches().last_punch_id(); });
    if (!last) {
        co_return storage_unavailable(last.error);
    }
    auto filter = asked.filter;
    filter.up_to_id = *last.value;
    auto pages =
        std::make_shared<punch_csv_pages>(std::move(filter), asked.csv_limit, std::move(device_of));
    http_response reply{200, "text/csv; charset=utf-8", {}, {}, {}};
    reply.headers.emplace_back("Content-Disposition", "attachment; filename=\"punches.csv\"");
    reply.stream = [this, pages]() -> boost::asio::awaitable<std::optional<std::string>> {
        if (pages->done()) {
            co_return std::string{};
        }
        auto page = pages->next_page();
        auto rows = co_await reader.run([&] { return store.punches().query_punches(page); });
        if (!rows) {
            co_return std::nullopt;
        }
        co_return pages->take(*rows.value);
    };
    co_return reply;
}

} // namespace adms::server
