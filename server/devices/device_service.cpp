#include "server/devices/device_service.hpp"

#include "protocol/attlog.hpp"
#include "protocol/civil_time.hpp"
#include "protocol/command.hpp"
#include "protocol/devicecmd.hpp"
#include "protocol/gettime_reply.hpp"
#include "protocol/handshake.hpp"
#include "protocol/info.hpp"
#include "protocol/operlog.hpp"
#include "protocol/options_body.hpp"
#include "protocol/photo.hpp"
#include "protocol/stamp.hpp"
#include "protocol/text.hpp"
#include "protocol/zk_time.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/security/admin_token.hpp"
#include "server/storage/commit_queue.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace adms::server {
namespace {

using protocol::text::iequals;

// How long the drift watch's history is kept.
constexpr auto drift_history_kept = std::chrono::days{90};

// Drift points kept for the next flush at most (while storage fails, newer ones are dropped).
constexpr std::size_t max_pending_drift_points = 100'000;

// Punches per upload given to the drift watch: the latest by device time are the least delayed.
constexpr std::size_t drift_samples_per_upload = 4;

// The DateTime a queued time sync is stored with until it goes out (ZK 0, 2000-01-01 00:00:00):
// as long as a real value, so the reply-size limit is computed right.
constexpr std::string_view time_sync_placeholder = "DateTime=000000000";

// How a punch's wall-clock time is placed on the UTC timeline when DST makes it nonexistent or
// ambiguous: with the offset in force before the transition. A device whose clock has not yet
// been moved shows exactly such times (docs/device-server.md: "DST and punches").
constexpr tz::resolve_policy punch_policy{tz::gap_policy::shift_forward,
                                          tz::overlap_policy::earliest};

instant to_instant(std::chrono::system_clock::time_point t)
{
    return std::chrono::floor<std::chrono::milliseconds>(t);
}

std::chrono::sys_seconds to_seconds(instant t)
{
    return std::chrono::floor<std::chrono::seconds>(t);
}

std::string verb_of(time_dialect dialect)
{
    return dialect == time_dialect::att_singular ? "SET OPTION" : "SET OPTIONS";
}

// A stable RegistryCode for a SEC device (≤ 32 chars): FNV-1a of its SN, in hex.
std::string registry_code(std::string_view serial_number)
{
    std::uint64_t hash = 1469598103934665603ULL;
    for (unsigned char c : serial_number) {
        hash = (hash ^ c) * 1099511628211ULL;
    }
    return fmt::format("{:016x}", hash);
}

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

std::optional<std::string> time_sync_text(const queued_command& command)
{
    if (!command.sent_at || command.text.ends_with(time_sync_placeholder)) {
        return std::nullopt;
    }
    return command.text;
}

device_service::device_service(const settings& config, database& store, commit_queue& writer,
                               logger& log, tz::zone server_zone, metrics& stats,
                               command_waiters& waiters)
    : config_{config}, store_{store}, writer_{writer}, log_{log},
      server_zone_{server_zone}, stats_{stats}, waiters_{waiters},
      device_networks_{network_list::parse(config.device_networks).value},
      by_serial_number_{static_cast<double>(config.device_rate_limit)},
      by_address_{static_cast<double>(config.address_rate_limit)}
{
    drift_params_.threshold =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.drift_threshold);
}

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&, write_tx&>> device_service::write(F f)
{
    auto start = std::chrono::steady_clock::now();
    auto result = co_await writer_.run(std::move(f));
    stats_.database_commit(std::chrono::steady_clock::now() - start);
    co_return result;
}

storage_status device_service::load()
{
    auto loaded = store_.devices().load_devices();
    if (!loaded) {
        return loaded.error;
    }
    std::vector<device_record> admitted;
    {
        std::lock_guard lock{mutex_};
        for (auto& record : *loaded.value) {
            auto sn = record.serial_number;
            // Only accepted requests update remote_address, so a device with a key was last
            // accepted from there.
            key_verified_from_[sn] = record.remote_address;
            auto& entry = devices_[sn];
            entry.options = std::move(record.options);
            record.options.clear();
            // The drift watch starts from the last confirmed sync; punches come as they arrive.
            if (record.time_sync_confirmed_at) {
                entry.drift.note_sync(record.time_sync_sent_at, *record.time_sync_confirmed_at);
            }
            entry.record = std::move(record);
        }
        // Devices declared in the config file but never seen become known at first contact.
        // Declaring a device also admits it in approval mode.
        for (const auto& [sn, device] : config_.devices) {
            auto it = devices_.find(sn);
            if (it == devices_.end()) {
                continue;
            }
            auto& record = it->second.record;
            it->second.settings = device;
            bool changed = false;
            if (!device.alias.empty() && record.alias != device.alias) {
                record.alias = device.alias;
                changed = true;
            }
            if (!record.approved) {
                record.approved = true;
                changed = true;
            }
            if (changed) {
                admitted.push_back(record);
            }
        }
    }
    for (const auto& record : admitted) {
        // A store that cannot write yet (read-only, full) does not stop the start: the
        // admission holds in memory and is written at the next start.
        auto saved = store_.write([&](write_tx& tx) { return tx.devices().upsert_device(record); });
        if (!saved) {
            storage_failure("applying the config file", saved.error);
            break;
        }
        auto released = store_.write(
            [&](write_tx& tx) { return tx.punches().release_quarantine(record.serial_number); });
        if (!released) {
            storage_failure("applying the config file", released.error);
            break;
        }
        if (*released.value > 0) {
            log_.event("approved",
                       fmt::format("Device {} is declared in the config file: {} "
                                   "quarantined punches released",
                                   escape_for_log(record.serial_number), *released.value));
        }
    }
    return std::monostate{};
}

tz::zone device_service::zone_of(const device_entry& entry) const
{
    // One set through the admin API (the later, explicit act), then the config file's, then the
    // server's.
    for (const auto* name : {entry.record.zone_override ? &*entry.record.zone_override : nullptr,
                             &entry.settings.time_zone}) {
        if (name != nullptr && !name->empty()) {
            if (auto found = tz::locate_zone(*name)) {
                return *found.value;
            }
        }
    }
    return server_zone_;
}

time_dialect device_service::dialect_of(const device_entry& entry) const
{
    if (const auto& stored = entry.record.time_dialect_override) {
        return parse_time_dialect(*stored).value_or(time_dialect::att);
    }
    return entry.settings.dialect.value_or(config_.dialect);
}

sync_schedule device_service::schedule_of(const device_entry& entry) const
{
    // As for zones: the admin API's value, then the config file's, then the global setting.
    sync_schedule schedule;
    const auto& r = entry.record;
    schedule.daily_at = r.sync_at_minutes ? std::chrono::minutes{*r.sync_at_minutes}
                                          : entry.settings.sync_at.value_or(config_.sync_at);
    if (r.sync_interval_minutes) {
        schedule.interval = std::chrono::minutes{*r.sync_interval_minutes}; // 0: off
    } else {
        schedule.interval =
            entry.settings.sync_interval ? entry.settings.sync_interval : config_.sync_interval;
    }
    return schedule;
}

device_snapshot device_service::snapshot_of(const device_entry& entry) const
{
    device_snapshot s;
    s.record = entry.record;
    s.record.options = entry.options;
    s.settings = entry.settings;
    auto zone = entry.zone ? *entry.zone : zone_of(entry);
    s.zone_name = std::string{zone.name()};
    s.zone_source = s.zone_name == entry.record.zone_override.value_or("") ? "api"
                    : s.zone_name == entry.settings.time_zone              ? "config"
                                                                           : "server";
    s.dialect = dialect_of(entry);
    auto schedule = schedule_of(entry);
    s.sync_at = schedule.daily_at;
    if (schedule.interval && schedule.interval->count() > 0) {
        s.sync_interval = schedule.interval;
    }
    return s;
}

device_service::device_view device_service::touch(const protocol::iclock_query& query,
                                                  const http_request& request)
{
    auto now = to_instant(request.received_at);
    std::optional<device_view> view;
    {
        std::lock_guard lock{mutex_};
        auto [it, inserted] = devices_.try_emplace(query.serial_number);
        auto& entry = it->second;
        auto& record = entry.record;
        if (inserted) {
            record.serial_number = query.serial_number;
            record.first_seen = now;
            auto configured = config_.devices.find(query.serial_number);
            // Approval mode admits the devices the config file declares.
            record.approved = !config_.approval_required || configured != config_.devices.end();
            if (configured != config_.devices.end()) {
                entry.settings = configured->second;
            }
            if (!entry.settings.alias.empty()) {
                record.alias = entry.settings.alias;
            }
        }
        if (!entry.zone) {
            entry.zone = zone_of(entry);
        }
        record.last_seen = now;
        record.remote_address = request.remote_address;
        if (query.push_version) {
            record.push_version = *query.push_version;
        }
        if (query.language) {
            record.language = *query.language;
        }
        view.emplace(device_view{record, inserted, *entry.zone, verb_of(dialect_of(entry)),
                                 schedule_of(entry)});
    }
    // Whatever request a device first makes, it is logged as new (outside the registry lock).
    if (view->is_new) {
        const auto& sn = query.serial_number;
        log_.event("new_device",
                   fmt::format("New device {} from {} (pushver {}){}", escape_for_log(sn),
                               request.remote_address,
                               escape_for_log(query.push_version.value_or("none")),
                               view->record.approved ? "" : ", awaiting approval"),
                   {{"sn", sn}, {"remote", request.remote_address}});
    }
    return std::move(*view);
}

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

boost::asio::awaitable<std::chrono::sys_seconds> device_service::at_next_second()
{
    boost::asio::steady_timer timer{co_await boost::asio::this_coro::executor};
    for (int attempt = 0;; ++attempt) {
        auto now = clock::now();
        auto boundary = std::chrono::ceil<std::chrono::seconds>(now);
        timer.expires_after(boundary - now);
        co_await timer.async_wait(boost::asio::use_awaitable);
        // When many replies wait for the same second (a fleet synced at once), the last ones
        // resume late and would set their clocks behind by that much: they take the next second
        // instead (at most twice), which also spreads the burst.
        if (clock::now() - boundary <= max_time_reply_lateness || attempt == 2) {
            co_return std::chrono::sys_seconds{boundary.time_since_epoch()};
        }
    }
}

void device_service::update_record(const std::string& serial_number,
                                   const std::function<void(device_record&)>& change)
{
    std::lock_guard lock{mutex_};
    if (auto it = devices_.find(serial_number); it != devices_.end()) {
        change(it->second.record);
    }
}

void device_service::merge_options(const std::string& serial_number,
                                   std::span<const protocol::key_value> options)
{
    std::lock_guard lock{mutex_};
    auto it = devices_.find(serial_number);
    if (it == devices_.end()) {
        return;
    }
    auto& kept = it->second.options;
    for (const auto& kv : options) {
        auto at = std::lower_bound(
            kept.begin(), kept.end(), kv.key,
            [](const protocol::key_value& a, const std::string& key) { return a.key < key; });
        if (at != kept.end() && at->key == kv.key) {
            at->value = kv.value;
        } else {
            kept.insert(at, kv);
        }
    }
}

void device_service::storage_ok()
{
    bool recovered = false;
    {
        std::lock_guard lock{mutex_};
        recovered = storage_failed_;
        storage_failed_ = false;
        storage_error_.clear();
    }
    if (recovered) {
        log_.event("storage", "Storage recovered: uploads are acknowledged again");
    }
}

http_response device_service::storage_failure(std::string_view what, const storage_error& error)
{
    bool first = false;
    {
        std::lock_guard lock{mutex_};
        first = !storage_failed_;
        storage_failed_ = true;
        storage_error_ = error.message;
        next_write_attempt_ = std::chrono::steady_clock::now() + storage_retry_interval;
    }
    if (first) {
        log_.event("storage",
                   fmt::format("Storage failed ({}): {}; answering 503 until it recovers", what,
                               error.message),
                   {{"what", std::string{what}}, {"error", error.message}});
    }
    return storage_unavailable();
}

http_response device_service::storage_unavailable() const
{
    auto reply = text_response(503, "storage unavailable, retry later\n");
    reply.headers.emplace_back("Retry-After", std::to_string(config_.error_delay));
    return reply;
}

bool device_service::write_allowed()
{
    std::lock_guard lock{mutex_};
    if (!storage_failed_) {
        return true;
    }
    // While storage fails, one upload a second tries it (and notices recovery); the others are
    // answered 503 at once instead of queueing behind a write that waits for a lock or fails.
    auto now = std::chrono::steady_clock::now();
    if (now < next_write_attempt_) {
        return false;
    }
    next_write_attempt_ = now + storage_retry_interval;
    return true;
}

void device_service::report_storage_failure(std::string_view what, const storage_error& error)
{
    storage_failure(what, error);
}

boost::asio::awaitable<void> device_service::probe_storage()
{
    if (storage_healthy()) {
        co_return;
    }
    auto probed = co_await write([](write_tx& tx) { return tx.probe(); });
    if (probed) {
        storage_ok();
    } else {
        std::lock_guard lock{mutex_};
        storage_error_ = probed.error.message;
    }
}

std::string device_service::storage_error_message() const
{
    std::lock_guard lock{mutex_};
    return storage_error_;
}

void device_service::save_device(const std::string& serial_number)
{
    std::lock_guard lock{mutex_};
    if (auto it = devices_.find(serial_number); it != devices_.end() && !it->second.dirty) {
        it->second.dirty = true;
        dirty_.push_back(serial_number);
    }
}

std::vector<device_record> device_service::take_dirty()
{
    std::lock_guard lock{mutex_};
    std::vector<device_record> out;
    std::vector<std::string> kept;
    for (auto& sn : dirty_) {
        auto it = devices_.find(sn);
        if (it == devices_.end()) {
            continue;
        }
        if (it->second.patching > 0) {
            kept.push_back(std::move(sn));
            continue;
        }
        it->second.dirty = false;
        out.push_back(it->second.record);
    }
    dirty_ = std::move(kept);
    return out;
}

void device_service::restore_dirty(const std::vector<std::string>& serial_numbers)
{
    for (const auto& sn : serial_numbers) {
        save_device(sn);
    }
}

storage_status device_service::upsert_all(write_tx& tx, const std::vector<device_record>& records,
                                          std::vector<std::string>& failed)
{
    storage_status status{std::monostate{}};
    for (const auto& record : records) {
        if (auto saved = tx.devices().upsert_device(record); !saved) {
            failed.push_back(record.serial_number);
            status = saved.error;
        }
    }
    return status;
}

boost::asio::awaitable<void> device_service::flush_devices()
{
    // While storage fails the registry keeps the changes; the flush after recovery writes them.
    if (!storage_healthy()) {
        co_return;
    }
    {
        std::lock_guard lock{mutex_};
        if (dirty_.empty() && drift_points_.empty() && sent_texts_.empty()) {
            co_return;
        }
    }
    // The copies are taken on the writer thread, in queue order: a PATCH's write queued before
    // this flush is stored first, and one in flight is skipped (its entry stays marked).
    std::vector<std::string> all;
    std::vector<std::string> failed;
    auto saved = co_await write([&](write_tx& tx) -> storage_status {
        auto records = take_dirty();
        for (const auto& r : records) {
            all.push_back(r.serial_number);
        }
        auto status = upsert_all(tx, records, failed);
        if (auto points = take_drift_points(); !points.empty()) {
            // History, not acknowledged data: points a failed write loses are not retried.
            if (auto stored = tx.clocks().store_clock_offsets(points, to_instant(clock::now()) -
                                                                          drift_history_kept);
                !stored) {
                log_.event("error", fmt::format("Saving {} drift points failed: {}", points.size(),
                                                stored.error.message));
            }
        }
        write_sent_texts(tx);
        return status;
    });
    if (!saved) {
        // Whether the commit or single rows failed, writing them all again is harmless.
        restore_dirty(all);
        storage_failure("saving devices", saved.error);
        co_return;
    }
    storage_ok();
}

storage_status device_service::flush_devices_now()
{
    auto records = take_dirty();
    std::vector<std::string> failed;
    auto saved = store_.write([&](write_tx& tx) {
        auto status = upsert_all(tx, records, failed);
        if (auto points = take_drift_points(); !points.empty()) {
            if (auto stored = tx.clocks().store_clock_offsets(points, to_instant(clock::now()) -
                                                                          drift_history_kept);
                !stored) {
                log_.event("error", fmt::format("Saving {} drift points at stop failed: {}",
                                                points.size(), stored.error.message));
            }
        }
        write_sent_texts(tx);
        return status;
    });
    if (!saved) {
        // Whether the commit or single rows failed, writing them all again is harmless.
        for (const auto& r : records) {
            failed.push_back(r.serial_number);
        }
        restore_dirty(failed);
    }
    return saved;
}

boost::asio::awaitable<storage_result<enqueued_command>>
device_service::enqueue_time_sync(const std::string& serial_number, const std::string& verb,
                                  std::string_view reason, clock::time_point now)
{
    // The DateTime value is filled in when the command goes out: queue a placeholder of the
    // same length so the reply-size limit is computed right. A pending time sync (queued, or sent
    // and not answered) is returned instead of queueing a second one, in the same transaction.
    std::string placeholder = fmt::format("{} {}", verb, time_sync_placeholder);
    std::string kind = fmt::format("{}: {}", time_sync_kind, reason);
    auto queued = co_await write([&](write_tx& tx) {
        return tx.commands().enqueue_command_unless_pending(serial_number, placeholder, kind,
                                                            time_sync_kind, to_instant(now));
    });
    if (!queued) {
        storage_failure("queueing a time sync", queued.error);
        co_return queued;
    }
    storage_ok();
    update_record(serial_number, [&](device_record& r) { r.time_sync_sent_at = to_instant(now); });
    if (queued.value->created) {
        note_queued(serial_number);
        stats_.commands_queued(1);
        log_.event("time_sync_queued",
                   fmt::format("Time sync queued for device {} (reason: {})",
                               escape_for_log(serial_number), reason),
                   {{"sn", serial_number}, {"reason", std::string{reason}}});
    }
    co_return queued;
}

boost::asio::awaitable<bool> device_service::queue_time_sync(const device_view& device,
                                                             std::string_view reason,
                                                             clock::time_point now)
{
    if (!storage_healthy()) {
        co_return false; // the handshake's TimeZone and Date still set the clock
    }
    auto queued = co_await enqueue_time_sync(device.record.serial_number, device.verb, reason, now);
    co_return static_cast<bool>(queued);
}

route_handler device_service::route(endpoint e, rate_limit limit)
{
    return [this, e, limit](const http_request& request,
                            const route_match&) -> boost::asio::awaitable<http_response> {
        auto parsed = protocol::parse_iclock_query(request.target);
        if (!parsed) {
            co_return text_response(400, parsed.error.message + "\n");
        }
        const auto& query = *parsed.query;
        bool time_request = query.type && iequals(*query.type, "time");
        bool limited =
            limit == rate_limit::always || (limit == rate_limit::handshakes && !time_request);
        if (limited) {
            if (auto refused = rate_limited(query, request)) {
                co_return std::move(*refused);
            }
        }
        bool is_handshake = limit == rate_limit::handshakes && !time_request;
        if (auto reason = refusal_reason(query, request, is_handshake)) {
            co_return co_await refuse(query, request, std::move(*reason));
        }
        co_return co_await (this->*e)(request, query);
    };
}

boost::asio::awaitable<http_response> device_service::cdata_get(const http_request& request,
                                                                const protocol::iclock_query& query)
{
    if (query.type && iequals(*query.type, "time")) {
        co_return co_await time_reply(request, query, false);
    }
    co_return co_await handshake(request, query);
}

boost::asio::awaitable<http_response>
device_service::getrequest(const http_request& request, const protocol::iclock_query& query)
{
    if (const auto* cmd = query.find_extra("cmd")) {
        if (iequals(*cmd, "gettime") || iequals(*cmd, "settime")) {
            co_return co_await compat_time_reply(request, query, *cmd);
        }
    }
    co_return co_await poll(request, query);
}

boost::asio::awaitable<http_response> device_service::ping(const http_request& request,
                                                           const protocol::iclock_query& query)
{
    touch(query, request);
    co_return text_response(200, "OK");
}

boost::asio::awaitable<http_response> device_service::rtdata(const http_request& request,
                                                             const protocol::iclock_query& query)
{
    if (query.type && iequals(*query.type, "time")) {
        co_return co_await time_reply(request, query, true);
    }
    touch(query, request);
    co_return text_response(200, "OK");
}

boost::asio::awaitable<http_response> device_service::fdata(const http_request& request,
                                                            const protocol::iclock_query& query)
{
    auto device = touch(query, request);
    if (!write_allowed()) {
        co_return storage_unavailable();
    }
    co_return co_await store_photo(device, request);
}

boost::asio::awaitable<http_response> device_service::registry(const http_request& request,
                                                               const protocol::iclock_query& query)
{
    touch(query, request);
    update_record(query.serial_number, [](device_record& r) { r.dialect = "SEC"; });
    save_device(query.serial_number);
    co_return text_response(200, "RegistryCode=" + registry_code(query.serial_number));
}

boost::asio::awaitable<http_response> device_service::push(const http_request& request,
                                                           const protocol::iclock_query& query)
{
    touch(query, request);
    co_return text_response(200,
                            protocol::format_push_reply({config_.error_delay, config_.poll_delay,
                                                         registry_code(query.serial_number)}));
}

std::string device_service::zone_name_of(std::string_view id) const
{
    if (auto device = find_device(id)) {
        return device->zone_name;
    }
    if (auto it = config_.devices.find(std::string{id});
        it != config_.devices.end() && !it->second.time_zone.empty()) {
        return it->second.time_zone;
    }
    return std::string{server_zone_.name()};
}

std::optional<http_response> device_service::rate_limited(const protocol::iclock_query& query,
                                                          const http_request& request)
{
    auto now = std::chrono::steady_clock::now();
    for (auto* limiter : {&by_serial_number_, &by_address_}) {
        bool by_sn = limiter == &by_serial_number_;
        const auto& key = by_sn ? query.serial_number : request.remote_address;
        auto decision = limiter->take(key, now);
        if (decision.allowed) {
            continue;
        }
        if (decision.log) {
            log_.event("rate_limit",
                       fmt::format("Rate limit: {} {} exceeds {} handshakes and uploads a second; "
                                   "answering 503 (logged once a minute)",
                                   by_sn ? "device" : "address", by_sn ? escape_for_log(key) : key,
                                   limiter->rate()),
                       {{by_sn ? "sn" : "remote", key}});
        }
        auto reply = text_response(503, "rate limit exceeded, retry later\n");
        reply.headers.emplace_back("Retry-After", std::to_string(decision.retry_after.count()));
        return reply;
    }
    return std::nullopt;
}

std::optional<std::string> device_service::refusal_reason(const protocol::iclock_query& query,
                                                          const http_request& request,
                                                          bool handshake)
{
    const auto& address = request.remote_address;
    // app::start() refuses an invalid list; should one reach here anyway, it admits nobody
    // (fail closed) rather than everybody.
    if (!device_networks_ || !device_networks_->contains(address)) {
        return fmt::format("source address {} is outside device_networks", address);
    }
    std::string key = config_.comm_key;
    if (auto it = config_.devices.find(query.serial_number);
        it != config_.devices.end() && !it->second.comm_key.empty()) {
        key = it->second.comm_key;
    }
    if (key.empty()) {
        return std::nullopt;
    }
    const auto* presented = query.find_extra("pushcommkey");
    std::lock_guard lock{mutex_};
    if (presented != nullptr) {
        if (!token_matches(*presented, std::span{&key, 1})) {
            return std::string{"wrong communication key (pushcommkey)"};
        }
        key_verified_from_[query.serial_number] = address;
        return std::nullopt;
    }
    if (handshake) {
        return std::string{"the handshake has no communication key (pushcommkey)"};
    }
    auto verified = key_verified_from_.find(query.serial_number);
    if (verified == key_verified_from_.end() || verified->second != address) {
        return fmt::format("no handshake with the communication key from {} yet", address);
    }
    return std::nullopt;
}

boost::asio::awaitable<http_response> device_service::refuse(const protocol::iclock_query& query,
                                                             const http_request& request,
                                                             std::string reason)
{
    const auto& sn = query.serial_number;
    if (refusal_log_.allow(sn + '\n' + request.remote_address + '\n' + reason,
                           std::chrono::steady_clock::now())) {
        log_.event("refused",
                   fmt::format("Refused {} {} from device {} at {}: {} (logged once a minute)",
                               escape_for_log(request.method), escape_for_log(query.path),
                               escape_for_log(sn), request.remote_address, reason),
                   {{"sn", sn}, {"remote", request.remote_address}, {"reason", reason}});
    }
    if (request.method == "POST" && !request.body.empty()) {
        // Kept whole and apart from the device's data: an operator can read it, and the device
        // re-sends once it is let in (a 403 is not an acknowledgement).
        if (!write_allowed()) {
            co_return storage_unavailable();
        }
        std::string table = "refused:" + query.path.substr(query.path.rfind('/') + 1);
        if (query.table) {
            table += ":" + *query.table;
        }
        auto kept = co_await write([&](write_tx& tx) {
            return tx.uploads().store_table_body(sn, table, request.body,
                                                 to_instant(request.received_at));
        });
        if (!kept) {
            co_return storage_failure(fmt::format("keeping a refused upload from {}", sn),
                                      kept.error);
        }
        storage_ok();
    }
    co_return text_response(403, fmt::format("forbidden: {}\n", reason));
}

boost::asio::awaitable<http_response> device_service::handshake(const http_request& request,
                                                                const protocol::iclock_query& query)
{
    auto device = touch(query, request);
    const auto& sn = query.serial_number;
    if (!device.record.approved) {
        save_device(sn);
        co_return text_response(403, "device not approved\n");
    }
    // A handshake is a (re)boot: set the clock. A failure to queue is logged; the handshake is
    // still answered (its TimeZone and Date header set the clock too).
    co_await queue_time_sync(device, device.is_new ? "first contact" : "boot", request.received_at);

    protocol::handshake_reply reply;
    reply.serial_number = sn;
    reply.legacy_stamp_names = !query.push_version.has_value();
    const auto& record = device.record;
    if (record.full_upload_requested) {
        reply.attlog_stamp = reply.operlog_stamp = reply.attphoto_stamp = "0";
        update_record(sn, [](device_record& r) { r.full_upload_requested = false; });
    } else {
        reply.attlog_stamp = record.attlog_stamp.value_or("None");
        reply.operlog_stamp = record.operlog_stamp.value_or("None");
        reply.attphoto_stamp = record.attphoto_stamp.value_or("None");
    }
    reply.delay = config_.poll_delay;
    reply.error_delay = config_.error_delay;
    update_record(sn, [](device_record& r) {
        if (r.dialect.empty()) {
            r.dialect = "ATT";
        }
    });
    save_device(sn);
    auto now = std::chrono::floor<std::chrono::seconds>(clock::now());
    reply.time_zone = device.zone.time_zone_option(now);
    co_return text_response(200, protocol::render_handshake(reply));
}

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

    stats_.commands_sent(claimed.value->size());
    // A time sync's DateTime is the device's local time at a whole second, and the reply goes
    // out at that second: the device's clock is then right to within the delivery time.
    bool sets_clock = std::any_of(claimed.value->begin(), claimed.value->end(),
                                  [](const queued_command& c) { return is_time_sync(c); });
    auto send_time = sets_clock ? co_await at_next_second() : round_to_second(clock::now());
    auto device_local = device.zone.to_local(send_time);
    std::string body;
    for (const auto& command : *claimed.value) {
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
    co_return text_response(200, body.empty() ? std::string{"OK"} : std::move(body));
}

boost::asio::awaitable<http_response>
device_service::command_results(const http_request& request, const protocol::iclock_query& query)
{
    touch(query, request);
    if (!write_allowed()) {
        co_return storage_unavailable();
    }
    const auto& sn = query.serial_number;
    auto received = to_instant(request.received_at);
    auto parsed = protocol::parse_devicecmd(request.body);

    struct outcome {
        std::vector<result_match> matches;
        std::vector<queued_command> commands;
    };
    auto result = co_await write([&](write_tx& tx) -> storage_result<outcome> {
        auto matches = tx.commands().record_command_results(sn, parsed.records, received);
        if (!matches) {
            return matches.error;
        }
        for (const auto& r : parsed.records) {
            if (!r.info.empty()) {
                if (auto stored = tx.devices().store_device_options(sn, r.info, received);
                    !stored) {
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
            auto found = store_.commands().find_command(sn, r.id);
            if (!found) {
                return found.error;
            }
            if (*found.value) {
                commands.push_back(std::move(**found.value));
            }
        }
        return outcome{std::move(*matches.value), std::move(commands)};
    });
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
        stats_.time_sync(r.return_code == 0 ? sync_outcome::confirmed : sync_outcome::refused);
        if (r.return_code == 0) {
            update_record(sn, [&](device_record& rec) {
                rec.time_sync_confirmed_at = received;
                rec.time_sync_error.clear();
            });
            confirmed_sync_sent_at = command->sent_at;
            confirmed_sync = true;
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

void device_service::log_time_sent(const std::string& serial_number, const tz::zone& zone,
                                   std::chrono::sys_seconds now, std::string sending,
                                   std::string reason)
{
    time_sync_event event;
    event.serial_number = serial_number;
    event.server_utc = now;
    event.zone_name = std::string{zone.name()};
    event.server_local = zone.to_local(now);
    event.device_local = event.server_local;
    event.sending = std::move(sending);
    event.reason = std::move(reason);
    log_.time_sync(event);
}

boost::asio::awaitable<http_response>
device_service::time_reply(const http_request& request, const protocol::iclock_query& query,
                           bool sec)
{
    auto device = touch(query, request);
    auto now = co_await at_next_second();
    auto offset = device.zone.utc_offset(now);
    std::string body =
        sec ? protocol::render_rtdata_time(now, offset) : protocol::render_p320_time(now, offset);
    log_time_sent(query.serial_number, device.zone, now, body, {});
    co_return text_response(200, std::move(body));
}

boost::asio::awaitable<http_response>
device_service::compat_time_reply(const http_request& request, const protocol::iclock_query& query,
                                  const std::string& cmd)
{
    auto device = touch(query, request);
    auto format = protocol::time_format::standard;
    if (const auto* name = query.find_extra("format")) {
        auto parsed = protocol::parse_time_format(*name);
        if (!parsed) {
            co_return text_response(400, "unknown format (standard, iso, compact or unix)\n");
        }
        format = *parsed;
    }
    auto now = co_await at_next_second();
    bool set = iequals(cmd, "settime");
    std::string body = protocol::render_gettime_reply(now, device.zone.utc_offset(now), format,
                                                      set ? "SetTime" : "GetTime");
    log_time_sent(query.serial_number, device.zone, now,
                  fmt::format("{} XML with {} time format", set ? "SetTime" : "GetTime",
                              protocol::time_format_name(format)),
                  {});
    co_return http_response{200, "application/xml", std::move(body), {}, {}};
}

std::vector<device_snapshot> device_service::devices() const
{
    std::lock_guard lock{mutex_};
    std::vector<device_snapshot> out;
    out.reserve(devices_.size());
    for (const auto& [sn, entry] : devices_) {
        out.push_back(snapshot_of(entry));
    }
    return out;
}

std::pair<std::size_t, std::size_t>
device_service::device_counts(instant now, std::chrono::milliseconds window) const
{
    std::lock_guard lock{mutex_};
    auto online = std::count_if(devices_.begin(), devices_.end(), [&](const auto& item) {
        return now - item.second.record.last_seen <= window;
    });
    return {devices_.size(), static_cast<std::size_t>(online)};
}

std::optional<device_snapshot> device_service::find_device(std::string_view id) const
{
    std::lock_guard lock{mutex_};
    if (auto it = devices_.find(id); it != devices_.end()) {
        return snapshot_of(it->second);
    }
    for (const auto& [sn, entry] : devices_) {
        if (entry.record.alias && *entry.record.alias == id) {
            return snapshot_of(entry);
        }
    }
    return std::nullopt;
}

bool device_service::storage_healthy() const
{
    std::lock_guard lock{mutex_};
    return !storage_failed_;
}

boost::asio::awaitable<void>
device_service::watch_drift(const std::string& serial_number, instant now,
                            const std::function<void(drift_tracker&)>& feed)
{
    if (drift_params_.threshold <= std::chrono::milliseconds{0}) {
        co_return;
    }
    drift_update update;
    std::string id = serial_number;
    {
        std::lock_guard lock{mutex_};
        auto it = devices_.find(serial_number);
        if (it == devices_.end()) {
            co_return;
        }
        feed(it->second.drift);
        update = it->second.drift.evaluate(now, drift_params_);
        if (update.record && drift_points_.size() < max_pending_drift_points) {
            const auto& p = *update.record;
            drift_points_.push_back({serial_number, p.measured_at, p.offset.count(),
                                     p.uncertainty.count(), std::string{to_string(p.source)}});
        }
        id = api_id(it->second.record);
    }
    if (update.alert == drift_alert::none) {
        co_return;
    }
    const auto& e = update.estimate;
    auto offset = e.offset.value_or(std::chrono::milliseconds{0});
    auto seconds = [](std::chrono::milliseconds d) {
        return static_cast<double>(d.count()) / 1000.0;
    };
    bool raised = update.alert == drift_alert::raised;
    stats_.clock_drift(raised);
    std::vector<std::pair<std::string, std::string>> fields{
        {"sn", serial_number},
        {"offset_ms", std::to_string(offset.count())},
        {"source", std::string{to_string(e.source)}}};
    if (!raised) {
        log_.event("clock_drift_cleared",
                   fmt::format("Device {} clock is back within the drift threshold: {:+.1f} s "
                               "(\u00b1{:.1f} s, from {})",
                               escape_for_log(id), seconds(offset), seconds(e.uncertainty),
                               to_string(e.source)),
                   fields);
        co_return;
    }
    bool sync = config_.drift_auto_sync;
    log_.event(
        "clock_drift",
        fmt::format(
            "\xE2\x9A\xA0\xEF\xB8\x8F Device {} clock is {:.1f} s {} "
            "(\u00b1{:.1f} s, from {}), beyond the drift threshold of {} s{}",
            escape_for_log(id), std::abs(seconds(offset)), offset.count() > 0 ? "fast" : "slow",
            seconds(e.uncertainty), to_string(e.source),
            std::chrono::duration_cast<std::chrono::seconds>(drift_params_.threshold).count(),
            sync ? "; queueing a time sync" : ""),
        fields);
    if (sync) {
        co_await request_time_sync(serial_number, "clock drift");
    }
}

std::vector<clock_offset_point> device_service::take_drift_points()
{
    std::lock_guard lock{mutex_};
    return std::exchange(drift_points_, {});
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

std::optional<device_service::drift_status>
device_service::drift_of(const std::string& serial_number) const
{
    auto now = to_instant(clock::now());
    std::lock_guard lock{mutex_};
    auto it = devices_.find(serial_number);
    if (it == devices_.end()) {
        return std::nullopt;
    }
    // Evaluated on a copy: looking must not record points or move the alert.
    auto tracker = it->second.drift;
    return drift_status{tracker.evaluate(now, drift_params_).estimate, tracker.alerting()};
}

boost::asio::awaitable<storage_result<enqueued_command>>
device_service::request_time_sync(const std::string& serial_number, std::string_view reason)
{
    std::string verb;
    {
        std::lock_guard lock{mutex_};
        auto it = devices_.find(serial_number);
        if (it == devices_.end()) {
            co_return storage_error{fmt::format("unknown device {}", serial_number)};
        }
        verb = verb_of(dialect_of(it->second));
    }
    co_return co_await enqueue_time_sync(serial_number, verb, reason, clock::now());
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

boost::asio::awaitable<device_service::update_result>
device_service::update_device(const std::string& serial_number, const device_patch& patch)
{
    // Apply the patch to a copy, store it, then apply the same fields to the registry (which
    // polls keep updating meanwhile), so a failed write changes nothing.
    // Clearing the alias goes back to the config file's, as for every other field.
    std::optional<std::string> configured_alias;
    if (auto it = config_.devices.find(serial_number);
        it != config_.devices.end() && !it->second.alias.empty()) {
        configured_alias = it->second.alias;
    }
    auto apply = [&](device_record& r) {
        if (patch.alias) {
            r.alias = patch.alias->has_value() ? *patch.alias : configured_alias;
        }
        if (patch.time_zone) {
            r.zone_override = *patch.time_zone;
        }
        if (patch.dialect) {
            r.time_dialect_override.reset();
            if (*patch.dialect) {
                r.time_dialect_override = std::string{to_string(**patch.dialect)};
            }
        }
        if (patch.sync_at) {
            r.sync_at_minutes.reset();
            if (*patch.sync_at) {
                r.sync_at_minutes = static_cast<int>((*patch.sync_at)->count());
            }
        }
        if (patch.sync_interval) {
            r.sync_interval_minutes.reset();
            if (*patch.sync_interval) {
                r.sync_interval_minutes = static_cast<int>((*patch.sync_interval)->count());
            }
        }
        if (patch.approved) {
            r.approved = *patch.approved;
        }
    };
    std::optional<device_record> copy;
    bool was_approved = false;
    {
        std::lock_guard lock{mutex_};
        auto it = devices_.find(serial_number);
        if (it == devices_.end()) {
            co_return update_result{{},
                                    update_error::unknown_device,
                                    fmt::format("Device not found: {}", serial_number)};
        }
        if (patch.alias && *patch.alias) {
            const auto& alias = **patch.alias;
            for (const auto& [sn, entry] : devices_) {
                if (sn != serial_number && (sn == alias || entry.record.alias == alias)) {
                    co_return update_result{
                        {},
                        update_error::alias_in_use,
                        fmt::format("alias '{}' is already used by device {}", alias, sn)};
                }
            }
        }
        copy = it->second.record;
        was_approved = copy->approved;
        // Until the registry has the patch, a flush must not write its older copy over it.
        ++it->second.patching;
    }
    apply(*copy);
    bool releasing = copy->approved && !was_approved;
    auto stored = co_await write([&](write_tx& tx) -> storage_result<std::size_t> {
        auto saved = tx.devices().upsert_device(*copy);
        if (!saved) {
            return saved.error;
        }
        if (!releasing) {
            return std::size_t{0};
        }
        return tx.punches().release_quarantine(serial_number);
    });
    if (!stored) {
        std::lock_guard lock{mutex_};
        --devices_[serial_number].patching;
    }
    if (!stored) {
        storage_failure("updating a device", stored.error);
        co_return update_result{
            {}, update_error::storage_failed, "storage unavailable: " + stored.error.message};
    }
    storage_ok();
    std::optional<device_snapshot> snapshot;
    {
        std::lock_guard lock{mutex_};
        auto& entry = devices_[serial_number];
        apply(entry.record);
        --entry.patching;
        entry.zone.reset(); // the zone in force may have changed
        entry.zone = zone_of(entry);
        snapshot = snapshot_of(entry);
    }
    log_.event(
        "device_updated",
        fmt::format("Device {} updated through the admin API{}", escape_for_log(serial_number),
                    releasing
                        ? fmt::format(": approved, {} quarantined punches released", *stored.value)
                        : ""),
        {{"sn", serial_number}});
    co_return update_result{std::move(snapshot), update_error::none, {}};
}

} // namespace adms::server
