#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/events/event_stream.hpp"
#include "server/observability/logger.hpp"
#include "server/records/punch_format.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace adms::server {
namespace {

// Applies a PATCH's fields to a device record; clearing the alias goes back to
// `configured_alias`.
void apply_patch(device_record& r, const device_patch& patch,
                 const std::optional<std::string>& configured_alias)
{
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
    if (patch.area) {
        r.area = *patch.area;
    }
}

} // namespace

using namespace device_internal;

storage_result<std::size_t>
device_service::release_and_announce(write_tx& tx, const std::string& serial_number,
                                     const punch_device& device,
                                     std::vector<published_event>& staged) const
{
    std::size_t released = 0;
    auto written = tx.atomic([&]() -> storage_status {
        auto rows = tx.punches().release_quarantine(serial_number);
        if (!rows) {
            return rows.error;
        }
        released = rows.value->size();
        if (rows.value->empty() || !events_.active()) {
            return std::monostate{};
        }
        std::vector<event> events;
        events.reserve(rows.value->size());
        for (const auto& p : *rows.value) {
            events.push_back({"punch.created", p.serial_number, punch_json(p, device)});
        }
        return events_.stage(tx, events, staged);
    });
    if (!written) {
        return written.error;
    }
    return released;
}

storage_status device_service::load()
{
    auto loaded = store_.devices().load_devices();
    if (!loaded) {
        return loaded.error;
    }
    std::vector<device_record> admitted;
    auto now = to_instant(clock::now());
    auto offline_after = std::chrono::seconds{config_.poll_delay} * config_.device_offline_polls;
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
            entry.online = now - record.last_seen <= offline_after;
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
        std::vector<published_event> staged;
        auto released = store_.write([&](write_tx& tx) {
            return release_and_announce(tx, record.serial_number, {api_id(record), server_zone_},
                                        staged);
        });
        if (!released) {
            storage_failure("applying the config file", released.error);
            break;
        }
        events_.publish(staged);
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
        if (!entry.online) {
            entry.online = true;
            came_online_.push_back(
                {query.serial_number, api_id(record), request.remote_address,
                 inserted ? std::nullopt : std::optional<instant>{record.last_seen}, *entry.zone});
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

device_service::patch_start device_service::begin_patch(const std::string& serial_number,
                                                        const device_patch& patch)
{
    std::lock_guard lock{mutex_};
    auto it = devices_.find(serial_number);
    if (it == devices_.end()) {
        return {
            {},
            {},
            {{}, update_error::unknown_device, fmt::format("Device not found: {}", serial_number)}};
    }
    if (patch.alias && *patch.alias) {
        const auto& alias = **patch.alias;
        for (const auto& [sn, entry] : devices_) {
            if (sn != serial_number && (sn == alias || entry.record.alias == alias)) {
                return {{},
                        {},
                        {{},
                         update_error::alias_in_use,
                         fmt::format("alias '{}' is already used by device {}", alias, sn)}};
            }
        }
    }
    // Until the registry has the patch, a flush must not write its older copy over it.
    ++it->second.patching;
    return {it->second.record, zone_of(it->second), {}};
}

boost::asio::awaitable<storage_result<std::size_t>>
device_service::store_patched(const device_record& patched, bool releasing, const tz::zone& zone)
{
    // Released punches are announced now, as punch.created, in the commit that releases them.
    std::vector<published_event> staged;
    auto stored = co_await write([&](write_tx& tx) -> storage_result<std::size_t> {
        std::size_t count = 0;
        auto written = tx.atomic([&]() -> storage_status {
            auto saved = tx.devices().upsert_device(patched);
            auto released = saved && releasing
                                ? release_and_announce(tx, patched.serial_number,
                                                       {api_id(patched), zone}, staged)
                                : storage_result<std::size_t>{std::size_t{0}};
            count = released ? *released.value : 0;
            return !saved     ? storage_status{saved.error}
                   : released ? storage_status{std::monostate{}}
                              : storage_status{released.error};
        });
        return written ? storage_result<std::size_t>{count}
                       : storage_result<std::size_t>{written.error};
    });
    if (stored) {
        events_.publish(staged);
    }
    co_return stored;
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
    auto apply = [&](device_record& r) { apply_patch(r, patch, configured_alias); };
    auto start = begin_patch(serial_number, patch);
    if (!start.record) {
        co_return std::move(start.refused);
    }
    bool was_approved = start.record->approved;
    apply(*start.record);
    bool releasing = start.record->approved && !was_approved;
    auto stored = co_await store_patched(*start.record, releasing, *start.zone);
    if (!stored) {
        {
            std::lock_guard lock{mutex_};
            --devices_[serial_number].patching;
        }
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

boost::asio::awaitable<void> device_service::watch_presence()
{
    auto now = to_instant(clock::now());
    auto offline_after = std::chrono::seconds{config_.poll_delay} * config_.device_offline_polls;
    bool announcing = events_.active();
    std::vector<event> events;
    {
        std::lock_guard lock{mutex_};
        for (auto& c : came_online_) {
            if (!announcing) {
                break;
            }
            boost::json::object data;
            data["device"] = c.id;
            data["sn"] = c.serial_number;
            data["remote_address"] = c.remote_address;
            data["silent_since"] = c.silent_since
                                       ? boost::json::value(format_iso(*c.silent_since, c.zone))
                                       : boost::json::value(nullptr);
            events.push_back({"device.online", c.serial_number, std::move(data)});
        }
        came_online_.clear();
        // A scan of every device: every few seconds is plenty for a window of polls.
        if (now >= next_presence_scan_) {
            next_presence_scan_ = now + std::chrono::seconds{5};
            for (auto& [sn, entry] : devices_) {
                if (!entry.online || now - entry.record.last_seen <= offline_after) {
                    continue;
                }
                entry.online = false;
                if (!announcing) {
                    continue;
                }
                boost::json::object data;
                data["device"] = api_id(entry.record);
                data["sn"] = sn;
                data["last_seen"] =
                    format_iso(entry.record.last_seen, entry.zone ? *entry.zone : server_zone_);
                data["silent_seconds"] =
                    std::chrono::duration_cast<std::chrono::seconds>(now - entry.record.last_seen)
                        .count();
                events.push_back({"device.offline", sn, std::move(data)});
            }
        }
    }
    if (events.empty()) {
        co_return;
    }
    if (auto recorded = co_await events_.record(writer_, std::move(events)); !recorded) {
        storage_failure("recording device presence events", recorded.error);
    }
}

} // namespace adms::server
