#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/admin/api_format.hpp"
#include "server/net.hpp"
#include "server/storage/blocking_pool.hpp"

#include <fmt/format.h>

#include <map>
#include <memory>

namespace adms::server {
namespace {

// Punch pages: the default and largest `limit`, and the rows per CSV chunk.
constexpr std::size_t default_punch_limit = 1000;
constexpr std::size_t max_punch_limit = 10000;
constexpr std::size_t csv_page_rows = 2000;

} // namespace

boost::asio::awaitable<http_response> admin_api::punches(const http_request&,
                                                         const route_match& match)
{
    co_return co_await list_punches(match.query, false);
}

boost::asio::awaitable<http_response> admin_api::punches_csv(const http_request&,
                                                             const route_match& match)
{
    co_return co_await list_punches(match.query, true);
}

boost::asio::awaitable<http_response> admin_api::list_punches(const query_params& params, bool csv)
{
    punch_filter filter;
    filter.limit = default_punch_limit;
    std::optional<std::size_t> csv_limit;
    for (const auto& [key, value] : params) {
        if (key == "device") {
            // Repeatable, or comma-separated; each an id (alias or SN).
            std::size_t start = 0;
            while (start <= value.size()) {
                auto comma = std::min(value.find(',', start), value.size());
                auto id = value.substr(start, comma - start);
                auto device = devices.find_device(id);
                if (!device) {
                    co_return error_reply(404, fmt::format("Device not found: {}", id));
                }
                filter.serial_numbers.push_back(device->record.serial_number);
                start = comma + 1;
            }
        } else if (key == "pin") {
            filter.pin = value;
        } else if (key == "from" || key == "to") {
            auto bound = parse_time_bound(value, key == "to");
            if (!bound.bound) {
                co_return input_reply({key, bound.error});
            }
            if (key == "from") {
                filter.local_from = bound.bound->local;
                filter.utc_from = bound.bound->utc;
            } else {
                filter.local_to = bound.bound->local;
                filter.utc_to = bound.bound->utc;
            }
        } else if (key == "after") {
            auto after = parse_number(value);
            if (!after || *after < 0) {
                co_return input_reply({"after", "must be a cursor from a previous page's next"});
            }
            filter.after_id = *after;
        } else if (key == "limit") {
            auto limit = parse_number(value);
            if (!limit || *limit < 1 ||
                (!csv && *limit > static_cast<long long>(max_punch_limit))) {
                co_return input_reply(
                    {"limit", fmt::format("must be from 1 to {}", csv ? "any size" : "10000")});
            }
            filter.limit = static_cast<std::size_t>(*limit);
            csv_limit = filter.limit;
        } else if (key == "quarantined") {
            auto flag = parse_flag(value);
            if (!flag) {
                co_return input_reply({"quarantined", "must be true or false"});
            }
            filter.include_quarantined = *flag;
        }
    }

    // The API id and zone of every device, for the rows.
    auto lookup = std::make_shared<std::map<std::string, punch_device, std::less<>>>();
    for (const auto& d : devices.devices()) {
        lookup->emplace(d.record.serial_number, punch_device{id_of(d), zone_of(d)});
    }
    auto device_of = [lookup](const stored_punch& p) -> punch_device {
        if (auto it = lookup->find(p.serial_number); it != lookup->end()) {
            return it->second;
        }
        return {p.serial_number, *tz::locate_zone("UTC").value};
    };

    if (!csv) {
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

    // CSV: pages of csv_page_rows up to the last punch stored now (a stable end), streamed.
    auto last = co_await reader.run([&] { return store.punches().last_punch_id(); });
    if (!last) {
        co_return storage_unavailable(last.error);
    }
    struct export_state {
        punch_filter filter;
        std::optional<std::size_t> remaining;
        bool header_sent = false;
        bool done = false;
    };
    auto state = std::make_shared<export_state>();
    state->filter = filter;
    state->filter.up_to_id = *last.value;
    state->remaining = csv_limit;
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
