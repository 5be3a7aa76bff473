#include "protocol/attlog.hpp"
#include "protocol/operlog.hpp"
#include "protocol/options_body.hpp"
#include "protocol/photo.hpp"
#include "protocol/stamp.hpp"
#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/observability/logger.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace adms::server {
namespace {

// Punches per upload given to the drift watch: the latest by device time are the least delayed.
constexpr std::size_t drift_samples_per_upload = 4;

// How a punch's wall-clock time is placed on the UTC timeline when DST makes it nonexistent or
// ambiguous: with the offset in force before the transition. A device whose clock has not yet
// been moved shows exactly such times (docs/device-server.md: "DST and punches").
constexpr tz::resolve_policy punch_policy{tz::gap_policy::shift_forward,
                                          tz::overlap_policy::earliest};

// The clock evidence of one upload: the latest punches placed on UTC, received at `received`.
std::vector<punch_sample> latest_samples(const std::vector<punch_input>& punches, instant received)
{
    std::vector<punch_sample> samples;
    for (const auto& p : punches) {
        if (p.utc) {
            samples.push_back({*p.utc, received});
        }
    }
    auto keep = std::min(samples.size(), drift_samples_per_upload);
    std::partial_sort(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(keep),
                      samples.end(),
                      [](const auto& a, const auto& b) { return a.device_utc > b.device_utc; });
    samples.resize(keep);
    return samples;
}

} // namespace

using namespace device_internal;

boost::asio::awaitable<http_response> device_service::upload(const http_request& request,
                                                             const protocol::iclock_query& query)
{
    if (!query.table || query.table->empty()) {
        co_return text_response(400, "missing table\n");
    }
    auto device = touch(query, request);
    if (!write_allowed()) {
        co_return storage_unavailable();
    }
    const auto& sn = query.serial_number;
    const auto& table = *query.table;
    auto received = to_instant(request.received_at);
    bool quarantined = !device.record.approved;

    // Per table: how to store the body, which lines were rejected, and which stamp it moves.
    std::function<storage_result<store_counts>(write_tx&)> store;
    std::vector<protocol::rejected_line> rejected;
    std::optional<std::string> device_record::*stamp_field = nullptr;
    std::optional<std::string> incoming_stamp = query.stamp;
    std::optional<std::size_t> accepted; // set for the tables answered OK:<n>
    std::vector<punch_input> punches;
    std::vector<protocol::operlog_record> operlog;
    std::vector<protocol::key_value> options;

    if (iequals(table, "ATTLOG")) {
        auto parsed = protocol::parse_attlog(request.body);
        punches.reserve(parsed.records.size());
        for (auto& record : parsed.records) {
            auto utc = device.zone.to_utc(record.time, punch_policy);
            punches.push_back({std::move(record), utc, {}});
        }
        // Keep each punch's line as received: the parser keeps records in body order and skips
        // the same blank lines, so the non-blank, non-rejected lines pair up with them.
        std::size_t next = 0;
        std::size_t rejected_index = 0;
        protocol::text::line_reader reader{request.body};
        while (auto line = reader.next()) {
            if (protocol::text::is_blank(line->text)) {
                continue;
            }
            if (rejected_index < parsed.rejected.size() &&
                parsed.rejected[rejected_index].line_number == line->number) {
                ++rejected_index;
            } else if (next < punches.size()) {
                punches[next++].raw_line = std::string{line->text};
            }
        }
        rejected = std::move(parsed.rejected);
        accepted = punches.size();
        stamp_field = &device_record::attlog_stamp;
        store = [&](write_tx& tx) {
            return tx.punches().store_punches(sn, punches, received, quarantined);
        };
    } else if (iequals(table, "OPERLOG")) {
        auto parsed = protocol::parse_operlog(request.body);
        operlog = std::move(parsed.records);
        rejected = std::move(parsed.rejected);
        accepted = operlog.size();
        stamp_field = &device_record::operlog_stamp;
        if (query.op_stamp) {
            incoming_stamp = query.op_stamp;
        }
        store = [&](write_tx& tx) { return tx.uploads().store_operlog(sn, operlog, received); };
    } else if (iequals(table, "options")) {
        auto parsed = protocol::parse_options_body(request.body);
        options = std::move(parsed.records);
        rejected = std::move(parsed.rejected);
        store = [&](write_tx& tx) -> storage_result<store_counts> {
            auto stored = tx.devices().store_device_options(sn, options, received);
            if (!stored) {
                return stored.error;
            }
            return store_counts{*stored.value, 0};
        };
    } else if (iequals(table, "ATTPHOTO")) {
        auto reply = co_await store_photo(device, request);
        bool moved = reply.status == 200 &&
                     merge_into_record(sn, &device_record::attphoto_stamp, query.stamp);
        if (moved || device.is_new) {
            save_device(sn);
        }
        co_return reply;
    } else {
        store = [&](write_tx& tx) -> storage_result<store_counts> {
            auto stored = tx.uploads().store_table_body(sn, table, request.body, received);
            if (!stored) {
                return stored.error;
            }
            return store_counts{1, 0};
        };
    }

    auto result = co_await write([&](write_tx& tx) -> storage_result<store_counts> {
        auto stored = store(tx);
        if (stored && !rejected.empty()) {
            if (auto kept = tx.uploads().store_rejected_lines(sn, table, rejected, received);
                !kept) {
                return kept.error;
            }
        }
        return stored;
    });
    for (const auto& line : rejected) {
        log_.event("rejected_line",
                   fmt::format("Rejected {} line {} from {}: {} ({})", escape_for_log(table),
                               line.line_number, escape_for_log(sn), line.reason,
                               escape_for_log(line.text.substr(0, 120))),
                   {{"sn", sn}, {"table", table}, {"reason", line.reason}});
    }
    if (!result) {
        co_return storage_failure(fmt::format("storing {} from {}", table, sn), result.error);
    }
    storage_ok();
    const auto& counts = *result.value;
    if (stamp_field == &device_record::attlog_stamp) {
        stats_.punches(counts.stored, counts.duplicate, rejected.size());
    }
    log_.event("batch",
               fmt::format("{}, {}, {} stored, {} duplicate, {} rejected{}", escape_for_log(sn),
                           escape_for_log(table), counts.stored, counts.duplicate, rejected.size(),
                           quarantined ? " (quarantined: device not approved)" : ""),
               {{"sn", sn},
                {"table", table},
                {"stored", std::to_string(counts.stored)},
                {"duplicate", std::to_string(counts.duplicate)},
                {"rejected", std::to_string(rejected.size())}});
    // The device row is written only when something in it moved: an fsync per upload otherwise.
    if (!options.empty()) {
        merge_options(sn, options);
    }
    bool moved = stamp_field != nullptr && merge_into_record(sn, stamp_field, incoming_stamp);
    if (moved || device.is_new) {
        save_device(sn);
    }
    if (!punches.empty()) {
        co_await watch_drift(sn, received, [&](drift_tracker& tracker) {
            tracker.note_punches(latest_samples(punches, received), drift_params_);
        });
    }
    co_return text_response(200, accepted ? fmt::format("OK:{}", *accepted) : "OK");
}

bool device_service::merge_into_record(const std::string& serial_number,
                                       std::optional<std::string> device_record::*stamp_field,
                                       const std::optional<std::string>& incoming)
{
    bool moved = false;
    update_record(serial_number, [&](device_record& r) {
        auto merged = protocol::merge_stamp(r.*stamp_field, incoming);
        moved = merged != r.*stamp_field;
        r.*stamp_field = std::move(merged);
    });
    return moved;
}

boost::asio::awaitable<http_response> device_service::store_photo(const device_view& device,
                                                                  const http_request& request)
{
    const auto& sn = device.record.serial_number;
    auto received = to_instant(request.received_at);
    auto upload = protocol::parse_photo_upload(request.body);
    storage_error error;
    bool ok = false;
    if (upload) {
        auto result = co_await write([&](write_tx& tx) {
            return tx.uploads().store_photo(sn, upload->file_name, upload->bytes, received);
        });
        ok = static_cast<bool>(result);
        if (!ok) {
            error = result.error;
        }
    } else {
        // Not the documented shape: keep the body whole rather than lose it.
        auto result = co_await write([&](write_tx& tx) {
            return tx.uploads().store_table_body(sn, "ATTPHOTO", request.body, received);
        });
        ok = static_cast<bool>(result);
        if (!ok) {
            error = result.error;
        }
    }
    if (!ok) {
        co_return storage_failure(fmt::format("storing a photo from {}", sn), error);
    }
    storage_ok();
    log_.event("photo",
               fmt::format("{}, photo {}, {} bytes", escape_for_log(sn),
                           escape_for_log(upload ? upload->file_name : "(unnamed)"),
                           upload ? upload->bytes.size() : request.body.size()),
               {{"sn", sn}});
    co_return text_response(200, "OK");
}

} // namespace adms::server
