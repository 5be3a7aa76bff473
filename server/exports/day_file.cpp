#include "server/exports/day_file.hpp"

#include "protocol/civil_time.hpp"
#include "server/exports/atomic_file.hpp"
#include "server/records/punch_csv.hpp"

#include <fmt/format.h>

namespace adms::server {
namespace {

// The filter of GET /punches.csv?from=<day>&to=<day>, made by the same parser the API uses.
punch_filter day_filter(std::chrono::local_days day)
{
    auto text = protocol::format_civil_date(day);
    punch_filter filter;
    filter.local_from = parse_time_bound(text, false).bound->local;
    filter.local_to = parse_time_bound(text, true).bound->local;
    return filter;
}

} // namespace

std::string day_file_name(std::chrono::local_days day)
{
    return fmt::format("punches-{}.csv", protocol::format_civil_date(day));
}

bool is_day_file_name(std::string_view name)
{
    constexpr std::string_view prefix = "punches-";
    constexpr std::string_view suffix = ".csv";
    if (name.size() != prefix.size() + 10 + suffix.size() || !name.starts_with(prefix) ||
        !name.ends_with(suffix)) {
        return false;
    }
    return protocol::parse_civil_date(name.substr(prefix.size(), 10)).has_value();
}

day_file_result write_day_file(punch_store& punches, const std::filesystem::path& directory,
                               std::chrono::local_days day, const device_lookup& device_of,
                               const std::atomic<bool>& cancelled)
{
    day_file_result out;
    auto fail = [&out](std::string error, bool storage) {
        out.error = std::move(error);
        out.storage_failed = storage;
        return out;
    };
    // Up to the last punch stored now, as the API's export: a busy day cannot keep it going.
    auto last = punches.last_punch_id();
    if (!last) {
        return fail(last.error.message, true);
    }
    auto filter = day_filter(day);
    filter.up_to_id = *last.value;
    punch_csv_pages pages{std::move(filter), std::nullopt, device_of};
    std::string error;
    auto file = atomic_file::create(directory, day_file_name(day), error);
    if (!file) {
        return fail(error, false);
    }
    while (!pages.done()) {
        if (cancelled) {
            out.cancelled = true;
            return fail("the server is stopping", false);
        }
        auto rows = punches.query_punches(pages.next_page());
        if (!rows) {
            return fail(rows.error.message, true);
        }
        if (!file->write(pages.take(*rows.value), error)) {
            return fail(error, false);
        }
    }
    if (!file->commit(error)) {
        return fail(error, false);
    }
    export_run run;
    run.day = day;
    run.file = file->path().string();
    run.rows = pages.rows();
    run.bytes = file->size();
    run.finished_at =
        std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    out.run = std::move(run);
    return out;
}

} // namespace adms::server
