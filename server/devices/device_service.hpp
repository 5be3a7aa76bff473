#pragma once

#include "protocol/query.hpp"
#include "server/config/settings.hpp"
#include "server/http/message.hpp"
#include "server/http/router.hpp"
#include "server/security/access_control.hpp"
#include "server/storage/database.hpp"
#include "server/timekeeping/drift_watch.hpp"
#include "server/timekeeping/time_sync_policy.hpp"
#include "tz/zone.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace adms::server {

class commit_queue;
class command_waiters;
class event_stream;
struct published_event;
struct punch_device;
class logger;
class metrics;

// The kind stored with time-sync commands; the reason follows it ("time-sync: boot").
inline constexpr std::string_view time_sync_kind = "time-sync";

// Whether a queued command is a time sync.
inline bool is_time_sync(const queued_command& command)
{
    return command.kind.starts_with(time_sync_kind);
}

// The id the admin API shows for a device: its alias, else its serial number.
inline std::string api_id(const device_record& record)
{
    return record.alias && !record.alias->empty() ? *record.alias : record.serial_number;
}

// What the admin API shows of one device: copies taken under the registry lock.
struct device_snapshot {
    device_record record;
    device_settings settings; // from the config file
    std::string zone_name;    // the zone in force
    std::string zone_source;  // "api" (PATCH), "config" (the config file) or "server"
    time_dialect dialect = time_dialect::att;
    std::chrono::minutes sync_at{0};
    std::optional<std::chrono::minutes> sync_interval;
};

// A change to a device from PATCH /devices/{id}: an absent member is left alone, an empty inner
// optional clears the API's override (the config file's value or the default applies again).
struct device_patch {
    std::optional<std::optional<std::string>> alias;
    std::optional<std::optional<std::string>> time_zone; // a valid IANA name
    std::optional<std::optional<time_dialect>> dialect;
    std::optional<std::optional<std::chrono::minutes>> sync_at;
    // An inner value of 0 turns the periodic sync off for this device.
    std::optional<std::optional<std::chrono::minutes>> sync_interval;
    std::optional<bool> approved;
    // The device's area (an existing area's code); an inner nullopt takes it out of every area.
    std::optional<std::optional<std::string>> area;
};

// The text a time sync went out with; nullopt while it was never sent. Until then its stored
// text is a placeholder (a DateTime of zeros, for the reply-size limit) no device ever gets: the
// DateTime is encoded at the whole second the reply goes out, and recorded within a second.
std::optional<std::string> time_sync_text(const queued_command& command);

// The iclock endpoints: handshake, uploads, command polls and results, time replies. Owns the
// in-memory device registry (backed by storage) and decides when a device's clock is set.
// Thread safety: handle() may run on many I/O threads at once; the registry is guarded by one
// mutex never held across co_await, and storage writes go through the commit queue.
class device_service {
  public:
    // Events (punch.created, device.online, …) are staged in the batches of the data they
    // announce and published through `events` after the commit.
    device_service(const settings& config, database& store, commit_queue& writer, logger& log,
                   tz::zone server_zone, metrics& stats, command_waiters& waiters,
                   const event_stream& events);

    // Loads the devices from storage and applies the config file's per-device settings.
    storage_status load();

    // Which requests of a route count against the rate limits: none, all, or handshakes only
    // (GET /iclock/cdata without type=time).
    enum class rate_limit { none, always, handshakes };
    // An /iclock/ endpoint: the request and its parsed query.
    using endpoint = boost::asio::awaitable<http_response> (device_service::*)(
        const http_request&, const protocol::iclock_query&);
    // The route handler of an endpoint (server/routes.cpp): parses the query (400 when it cannot
    // be read), applies `limit` and the network and key checks (503 with Retry-After, 403), then
    // calls `e`. `request` must outlive the awaitable (the session awaits it at once): no copy
    // of the body is made.
    route_handler route(endpoint e, rate_limit limit);

    // The /iclock/ endpoints (docs/device-server.md).
    // GET cdata: the handshake, or the time (type=time).
    boost::asio::awaitable<http_response> cdata_get(const http_request& request,
                                                    const protocol::iclock_query& query);
    // POST cdata: an upload (ATTLOG, OPERLOG, options, photos, any table).
    boost::asio::awaitable<http_response> upload(const http_request& request,
                                                 const protocol::iclock_query& query);
    // GET getrequest: a poll for commands, or the gettime/settime compatibility reply.
    boost::asio::awaitable<http_response> getrequest(const http_request& request,
                                                     const protocol::iclock_query& query);
    // POST devicecmd: command results.
    boost::asio::awaitable<http_response> command_results(const http_request& request,
                                                          const protocol::iclock_query& query);
    // GET ping: a sign of life.
    boost::asio::awaitable<http_response> ping(const http_request& request,
                                               const protocol::iclock_query& query);
    // GET rtdata: the time (type=time), else a sign of life.
    boost::asio::awaitable<http_response> rtdata(const http_request& request,
                                                 const protocol::iclock_query& query);
    // POST fdata: a photo.
    boost::asio::awaitable<http_response> fdata(const http_request& request,
                                                const protocol::iclock_query& query);
    // POST registry (SEC push 3.x): the registry code.
    boost::asio::awaitable<http_response> registry(const http_request& request,
                                                   const protocol::iclock_query& query);
    // POST push (SEC push 3.x): the server's push parameters.
    boost::asio::awaitable<http_response> push(const http_request& request,
                                               const protocol::iclock_query& query);

    // The zone a device id (serial number or alias) answers in, for the tylink time service: an
    // ADMS device's zone, else its [devices.<id>] time_zone, else the server's.
    std::string zone_name_of(std::string_view id) const;

    // Admin API: every device, ordered by serial number.
    std::vector<device_snapshot> devices() const;
    // How many devices are known, and how many made a request within `window` before `now`
    // (for /metrics and /healthz, without copying every record).
    std::pair<std::size_t, std::size_t> device_counts(instant now,
                                                      std::chrono::milliseconds window) const;
    // Admin API: the device whose serial number, else whose alias, is `id`.
    std::optional<device_snapshot> find_device(std::string_view id) const;
    // Queues an on-demand time sync, or returns the time sync already pending for the device
    // (so concurrent requests share one command). Waiting for its result is the caller's job.
    boost::asio::awaitable<storage_result<enqueued_command>>
    request_time_sync(const std::string& serial_number, std::string_view reason);
    // Queues an admin command (already validated) and returns its id.
    boost::asio::awaitable<storage_result<std::string>>
    queue_command(const std::string& serial_number, std::string text, std::string kind);
    // Why update_device changed nothing.
    enum class update_error { none, unknown_device, alias_in_use, storage_failed };
    // What update_device did: the device as it now is, or why not (with a message naming it).
    struct update_result {
        std::optional<device_snapshot> device;
        update_error error = update_error::none;
        std::string message;
    };
    // Applies a PATCH and persists it; approving also releases the device's quarantined punches.
    // An alias another device uses (as alias or serial number) is refused.
    boost::asio::awaitable<update_result> update_device(const std::string& serial_number,
                                                        const device_patch& patch);
    // What the drift watch knows of a device's clock now (nullopt: unknown device).
    struct drift_status {
        clock_estimate estimate;
        bool alerting = false;
    };
    std::optional<drift_status> drift_of(const std::string& serial_number) const;
    // The drift watch's settings (threshold zero: the watch is off).
    const drift_params& drift_settings() const { return drift_params_; }
    // False while storage writes fail (uploads are answered 503).
    bool storage_healthy() const;
    // The last storage failure while unhealthy; empty when healthy.
    std::string storage_error_message() const;
    // Marks storage as failing (logged once per change of state), e.g. a database opened for
    // reads only.
    void report_storage_failure(std::string_view what, const storage_error& error);
    // Writes every device whose registry copy changed since the last flush (stamps, last
    // contact, time-sync bookkeeping), in one storage call. Called every second: a device's row
    // lags its registry copy by at most that, and a crash loses at most that much of it (a
    // stamp that lags makes the device re-send punches, which are stored once).
    boost::asio::awaitable<void> flush_devices();
    // The same, blocking, on the calling thread: at stop, once no request runs.
    storage_status flush_devices_now();
    // Publishes device.online for the devices that came back since the last call and
    // device.offline for those silent for device_offline_polls poll delays (checked every few
    // seconds). Called every second with flush_devices().
    boost::asio::awaitable<void> watch_presence();
    // While storage fails: one small durable write, which marks storage healthy again (and logs
    // the recovery) when it works. Called periodically, so recovery is noticed without uploads.
    boost::asio::awaitable<void> probe_storage();

  private:
    using clock = std::chrono::system_clock;

    // The registry's copy of one device.
    struct device_entry {
        device_record record; // without options: a request copies it, and never needs them
        // The option values (uploads, INFO results) as stored, sorted by key: read only by the
        // admin views (snapshot_of), never copied by a device request.
        std::vector<protocol::key_value> options;
        device_settings settings; // from the config file
        // zone_of() computed once, not per request; reset it when the zone settings change.
        std::optional<tz::zone> zone;
        // Polls before this instant have nothing to claim (no command queued since the last
        // empty claim, and none sent can be due for re-sending yet): they skip storage.
        instant next_claim{};
        // Bumped by every command queued for the device, so a claim that overlapped a queueing
        // does not push next_claim past the new command.
        std::uint64_t queued_generation = 0;
        drift_tracker drift; // clock evidence as it arrives, and the drift alert's state
        bool online = false; // made a request within device_offline_polls poll delays
        bool dirty = false;  // changed since its row was last written (listed in dirty_)
        int patching = 0;    // PATCH writes in flight: a flush must not write an older copy
    };

    // What a request needs to know about its device, copied out of the registry.
    struct device_view {
        device_record record;
        bool is_new = false;
        tz::zone zone;
        std::string verb; // "SET OPTIONS" or "SET OPTION"
        sync_schedule schedule;
    };

    device_view touch(const protocol::iclock_query& query, const http_request& request);
    tz::zone zone_of(const device_entry& entry) const;
    time_dialect dialect_of(const device_entry& entry) const;
    sync_schedule schedule_of(const device_entry& entry) const;
    device_snapshot snapshot_of(const device_entry& entry) const;
    // Runs a storage write on the writer and records its latency (queue to commit).
    template <class F>
    boost::asio::awaitable<std::invoke_result_t<F&, write_tx&>> write(F f);
    void update_record(const std::string& serial_number,
                       const std::function<void(device_record&)>& change);
    // Merges option values just stored into the registry's copy, as storage does: the last
    // value wins per key, sorted by key.
    void merge_options(const std::string& serial_number,
                       std::span<const protocol::key_value> options);

    boost::asio::awaitable<http_response> handshake(const http_request& request,
                                                    const protocol::iclock_query& query);
    boost::asio::awaitable<http_response> store_photo(const device_view& device,
                                                      const http_request& request);
    boost::asio::awaitable<http_response> poll(const http_request& request,
                                               const protocol::iclock_query& query);
    // Why a poll sets the device's clock (first contact, boot with INFO, the periodic sync), if
    // it does; stores the INFO a poll carries.
    std::optional<std::string> poll_sync_reason(const device_view& device,
                                                const protocol::iclock_query& query,
                                                clock::time_point now);
    // The reply body sending `commands` (claimed for the device); a time sync's DateTime is
    // encoded at the whole second it goes out.
    boost::asio::awaitable<std::string> send_commands(const device_view& device,
                                                      const std::vector<queued_command>& commands);
    // Records the device's result for a time sync it was sent: counts, registry and log.
    void note_time_sync_result(const std::string& serial_number, const protocol::command_result& r,
                               instant received);
    // Time replies go out at a whole second (at_next_second), like a time-sync command.
    boost::asio::awaitable<http_response> time_reply(const http_request& request,
                                                     const protocol::iclock_query& query, bool sec);
    boost::asio::awaitable<http_response> compat_time_reply(const http_request& request,
                                                            const protocol::iclock_query& query,
                                                            const std::string& cmd);

    // Queues a time-sync command unless one is already pending; false on a storage failure.
    boost::asio::awaitable<bool> queue_time_sync(const device_view& device, std::string_view reason,
                                                 clock::time_point now);
    // The one place a time sync is queued (or the pending one found); logs and counts it.
    boost::asio::awaitable<storage_result<enqueued_command>>
    enqueue_time_sync(const std::string& serial_number, const std::string& verb,
                      std::string_view reason, clock::time_point now);
    // The device side's restrictions, checked before a request touches any state. A rate limit
    // answers 503 with Retry-After (the device re-sends); a refusal answers 403 and keeps the
    // body of an upload (table "refused:<table>"), so nothing is silently dropped.
    std::optional<http_response> rate_limited(const protocol::iclock_query& query,
                                              const http_request& request);
    std::optional<std::string> refusal_reason(const protocol::iclock_query& query,
                                              const http_request& request, bool handshake);
    boost::asio::awaitable<http_response> refuse(const protocol::iclock_query& query,
                                                 const http_request& request, std::string reason);
    // Merges a stamp the device sent into the registry's copy; true when the stored one moved.
    bool merge_into_record(const std::string& serial_number,
                           std::optional<std::string> device_record::*stamp_field,
                           const std::optional<std::string>& incoming);
    // Whether a poll at `now` must claim commands from storage, and the queueing generation the
    // claim's outcome is checked against (see note_claimed).
    std::optional<std::uint64_t> claim_due(const std::string& serial_number, instant now);
    // Records a claim's outcome: an empty claim lets polls skip storage until a sent command
    // could be due for re-sending, unless a command was queued meanwhile.
    void note_claimed(const std::string& serial_number, std::uint64_t generation, bool empty,
                      instant now);
    // Notes that a command was queued for the device: its next poll claims.
    void note_queued(const std::string& serial_number);
    // Waits until the next whole second of the server clock and returns it. A time on the wire
    // is whole seconds, exact at one instant only: a reply that sets a clock goes out then.
    boost::asio::awaitable<std::chrono::sys_seconds> at_next_second();
    // Logs the time-sync block for a time command or reply that goes out now.
    void log_time_sent(const std::string& serial_number, const tz::zone& zone,
                       std::chrono::sys_seconds now, std::string sending, std::string reason);
    // Gives a device's drift tracker new evidence (`feed`), evaluates it at `now`, keeps the
    // point it records for the next flush, and logs, counts and (with drift_auto_sync) queues a
    // time sync when the alert is raised.
    boost::asio::awaitable<void> watch_drift(const std::string& serial_number, instant now,
                                             const std::function<void(drift_tracker&)>& feed);
    // The drift points waiting for the next flush (taken, clearing the list).
    std::vector<clock_offset_point> take_drift_points();
    // A time sync's text as it went out, written by the next flush (set_command_text).
    struct sent_text {
        std::string serial_number;
        std::string id;
        std::string text;
    };
    void note_sent_text(sent_text sent);
    // Writes the sent texts waiting for the flush; those a failed write leaves go back.
    void write_sent_texts(write_tx& tx);
    // update_device's first step, under the lock: the device's record and zone, or why the patch
    // cannot apply (record empty). Marks the entry as being patched.
    struct patch_start {
        std::optional<device_record> record;
        std::optional<tz::zone> zone;
        update_result refused;
    };
    patch_start begin_patch(const std::string& serial_number, const device_patch& patch);
    // Stores a patched device; approving (`releasing`) releases its quarantined punches and
    // announces them after the commit. Returns how many were released.
    boost::asio::awaitable<storage_result<std::size_t>>
    store_patched(const device_record& patched, bool releasing, const tz::zone& zone);
    // Releases a device's quarantined punches and stages their punch.created events (shown as
    // `device`'s), all or nothing; returns how many were released.
    storage_result<std::size_t> release_and_announce(write_tx& tx, const std::string& serial_number,
                                                     const punch_device& device,
                                                     std::vector<published_event>& staged) const;
    // Marks the registry's copy of a device for the next flush_devices().
    void save_device(const std::string& serial_number);
    // Takes the devices marked for saving (clearing the marks), skipping those a PATCH is
    // writing; restore_dirty() marks them again after a failed write.
    std::vector<device_record> take_dirty();
    void restore_dirty(const std::vector<std::string>& serial_numbers);
    // Upserts `records`; the serial numbers that failed go to `failed`, the last error is
    // returned (monostate when every one was stored).
    storage_status upsert_all(write_tx& tx, const std::vector<device_record>& records,
                              std::vector<std::string>& failed);
    // Logs a storage failure once per change of state and builds the 503 reply.
    http_response storage_failure(std::string_view what, const storage_error& error);
    // Notes that storage works (logs the recovery after a failure).
    void storage_ok();
    // The 503 an upload gets while storage fails, with Retry-After.
    http_response storage_unavailable() const;
    // Whether an upload may try storage now: always while healthy; while failing, one a second.
    bool write_allowed();

    const settings& config_;
    database& store_;
    commit_queue& writer_;
    logger& log_;
    tz::zone server_zone_;
    metrics& stats_;
    command_waiters& waiters_;
    const event_stream& events_;

    mutable std::mutex mutex_;
    std::map<std::string, device_entry, std::less<>> devices_;
    std::vector<std::string> dirty_; // serial numbers whose entry is dirty
    drift_params drift_params_;
    std::vector<clock_offset_point> drift_points_; // recorded, not yet written
    std::vector<sent_text> sent_texts_;            // time syncs sent, text not yet written
    // Devices that came online since the last watch_presence(), with what device.online shows.
    struct came_online {
        std::string serial_number;
        std::string id;
        std::string remote_address;
        std::optional<instant> silent_since; // its last request before, if it was known
        tz::zone zone;
    };
    std::vector<came_online> came_online_;
    instant next_presence_scan_{};
    bool storage_failed_ = false;
    // Per serial number: the address of the last request that presented the right pushcommkey
    // (seeded at load with the address of the last accepted request).
    std::map<std::string, std::string, std::less<>> key_verified_from_;
    std::optional<network_list> device_networks_; // nullopt: the setting was invalid
    rate_limiter by_serial_number_;
    rate_limiter by_address_;
    log_throttle refusal_log_;
    std::string storage_error_;
    std::chrono::steady_clock::time_point next_write_attempt_{};
    static constexpr std::chrono::seconds storage_retry_interval{1};
    // How late after its second a time reply may still go out with that second (at_next_second).
    static constexpr std::chrono::milliseconds max_time_reply_lateness{20};
};

} // namespace adms::server
