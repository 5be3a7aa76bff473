#include "protocol/attlog.hpp"
#include "protocol/operlog.hpp"
#include "protocol/options_body.hpp"
#include "protocol/photo.hpp"
#include "protocol/stamp.hpp"
#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/events/event_stream.hpp"
#include "server/observability/logger.hpp"
#include "server/records/punch_format.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace adms::server {

using namespace device_internal;

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

// An upload's body parsed for its table: what is stored, which lines were rejected, and which
// stamp it moves.
struct parsed_upload {
    enum class kind { attlog, operlog, options, table_body };
    kind what = kind::table_body;
    std::vector<protocol::rejected_line> rejected;
    std::optional<std::string> device_record::*stamp_field = nullptr;
    std::optional<std::string> incoming_stamp;
    std::optional<std::size_t> accepted; // set for the tables answered OK:<n>
    std::vector<punch_input> punches;
    std::vector<protocol::operlog_record> operlog;
    std::vector<protocol::key_value> options;
};

// An ATTLOG body's punches, placed on UTC in `zone`, each with its line as received.
protocol::parse_result<punch_input> parse_punches(std::string_view body, const tz::zone& zone)
{
    auto parsed = protocol::parse_attlog(body);
    std::vector<punch_input> punches;
    punches.reserve(parsed.records.size());
    for (auto& record : parsed.records) {
        auto utc = zone.to_utc(record.time, punch_policy);
        punches.push_back({std::move(record), utc, {}});
    }
    // Keep each punch's line as received: the parser keeps records in body order and skips
    // the same blank lines, so the non-blank, non-rejected lines pair up with them.
    std::size_t next = 0;
    std::size_t rejected_index = 0;
    protocol::text::line_reader reader{body};
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
    return {std::move(punches), std::move(parsed.rejected)};
}

// Parses an upload's body for its table (ATTPHOTO is handled apart); any other table is kept
// whole.
parsed_upload parse_upload(const std::string& table, std::string_view body,
                           const protocol::iclock_query& query, const tz::zone& zone)
{
    parsed_upload u;
    u.incoming_stamp = query.stamp;
    if (iequals(table, "ATTLOG")) {
        auto parsed = parse_punches(body, zone);
        u.what = parsed_upload::kind::attlog;
        u.punches = std::move(parsed.records);
        u.rejected = std::move(parsed.rejected);
        u.accepted = u.punches.size();
        u.stamp_field = &device_record::attlog_stamp;
    } else if (iequals(table, "OPERLOG")) {
        auto parsed = protocol::parse_operlog(body);
        u.what = parsed_upload::kind::operlog;
        u.operlog = std::move(parsed.records);
        u.rejected = std::move(parsed.rejected);
        u.accepted = u.operlog.size();
        u.stamp_field = &device_record::operlog_stamp;
        if (query.op_stamp) {
            u.incoming_stamp = query.op_stamp;
        }
    } else if (iequals(table, "options")) {
        auto parsed = protocol::parse_options_body(body);
        u.what = parsed_upload::kind::options;
        u.options = std::move(parsed.records);
        u.rejected = std::move(parsed.rejected);
    }
    return u;
}

// Stores a parsed upload from `sn` (not its rejected lines).
storage_result<store_counts> store_upload(write_tx& tx, const std::string& sn,
                                          const std::string& table, const std::string& body,
                                          const parsed_upload& u, instant received,
                                          bool quarantined)
{
    switch (u.what) {
    case parsed_upload::kind::attlog: {
        auto stored = tx.punches().store_punches(sn, u.punches, received, quarantined);
        if (!stored) {
            return stored.error;
        }
        return store_counts{*stored.value};
    }
    case parsed_upload::kind::operlog:
        return tx.uploads().store_operlog(sn, u.operlog, received);
    case parsed_upload::kind::options: {
        auto stored = tx.devices().store_device_options(sn, u.options, received);
        if (!stored) {
            return stored.error;
        }
        return store_counts{*stored.value, 0};
    }
    case parsed_upload::kind::table_body:
        break;
    }
    auto stored = tx.uploads().store_table_body(sn, table, body, received);
    if (!stored) {
        return stored.error;
    }
    return store_counts{1, 0};
}

// What an ATTLOG upload announces: a punch.created event per new punch (never for a duplicate;
// quarantined punches only when released), with the fields of a GET /punches row.
struct punch_announcer {
    const event_stream& events;
    punch_device device;
    bool enabled = false;
    std::vector<published_event> staged; // filled in the batch, published after its commit
};

// Stores an ATTLOG upload and stages the events of its new punches.
storage_result<store_counts> store_attlog(write_tx& tx, const std::string& sn,
                                          const parsed_upload& u, instant received,
                                          bool quarantined, punch_announcer& announce)
{
    auto stored = tx.punches().store_punches(sn, u.punches, received, quarantined);
    if (!stored || !announce.enabled || stored.value->stored == 0) {
        return stored ? storage_result<store_counts>{store_counts{*stored.value}} : stored.error;
    }
    std::vector<event> events;
    events.reserve(stored.value->stored);
    for (std::size_t i = 0; i < u.punches.size(); ++i) {
        if (stored.value->ids[i] == 0) {
            continue;
        }
        events.push_back(
            {"punch.created", sn,
             punch_json(stored_punch_of(sn, u.punches[i], stored.value->ids[i], received),
                        announce.device)});
    }
    if (auto staged = announce.events.stage(tx, events, announce.staged); !staged) {
        return staged.error;
    }
    return store_counts{*stored.value};
}

// Where an upload came from, and when.
struct upload_origin {
    const std::string& sn;
    const std::string& table;
    const std::string& body;
    instant received;
    bool quarantined;
};

// Stores a parsed upload with its rejected lines and, for ATTLOG, the events of its new
// punches: all of it or, when anything fails, none (the device then sends it again).
storage_result<store_counts> store_whole_upload(write_tx& tx, const upload_origin& from,
                                                const parsed_upload& u, punch_announcer& announce)
{
    std::optional<store_counts> counts;
    auto stored = tx.atomic([&]() -> storage_status {
        auto kept = u.what == parsed_upload::kind::attlog
                        ? store_attlog(tx, from.sn, u, from.received, from.quarantined, announce)
                        : store_upload(tx, from.sn, from.table, from.body, u, from.received,
                                       from.quarantined);
        if (!kept) {
            return kept.error;
        }
        counts = *kept.value;
        if (!u.rejected.empty()) {
            if (auto lines = tx.uploads().store_rejected_lines(from.sn, from.table, u.rejected,
                                                               from.received);
                !lines) {
                return lines.error;
            }
        }
        return std::monostate{};
    });
    if (!stored) {
        return stored.error;
    }
    return *counts;
}

} // namespace

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

    if (iequals(table, "ATTPHOTO")) {
        auto reply = co_await store_photo(device, request);
        bool moved = reply.status == 200 &&
                     merge_into_record(sn, &device_record::attphoto_stamp, query.stamp);
        if (moved || device.is_new) {
            save_device(sn);
        }
        co_return reply;
    }
    auto parsed = parse_upload(table, request.body, query, device.zone);
    const auto& rejected = parsed.rejected;

    // A punch and its punch.created event commit together, and the rejected lines with them:
    // whatever fails undoes the whole upload, which the device then sends again.
    punch_announcer announce{events_, punch_device{api_id(device.record), device.zone}, false, {}};
    announce.enabled =
        parsed.what == parsed_upload::kind::attlog && !quarantined && events_.active();
    auto result = co_await write([&](write_tx& tx) {
        return store_whole_upload(tx, {sn, table, request.body, received, quarantined}, parsed,
                                  announce);
    });
    if (result) {
        events_.publish(announce.staged);
    }
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
    if (parsed.stamp_field == &device_record::attlog_stamp) {
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
    if (!parsed.options.empty()) {
        merge_options(sn, parsed.options);
    }
    bool moved = parsed.stamp_field != nullptr &&
                 merge_into_record(sn, parsed.stamp_field, parsed.incoming_stamp);
    if (moved || device.is_new) {
        save_device(sn);
    }
    if (!parsed.punches.empty()) {
        co_await watch_drift(sn, received, [&](drift_tracker& tracker) {
            tracker.note_punches(latest_samples(parsed.punches, received), drift_params_);
        });
    }
    co_return text_response(200, parsed.accepted ? fmt::format("OK:{}", *parsed.accepted) : "OK");
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
