#pragma once

#include "protocol/parse_result.hpp"
#include "server/storage/clock_store.hpp"
#include "server/storage/command_store.hpp"
#include "server/storage/device_store.hpp"
#include "server/storage/punch_store.hpp"
#include "server/storage/result.hpp"
#include "server/storage/upload_store.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The durable store behind the server: devices, punches, everything else a device uploads, and
// the per-device command queue. An interface with plain value types (no SQLite here: this header
// is widely included); server/sqlite_storage.hpp is the implementation.
//
// The value types live in one header per concern (result.hpp, device_store.hpp, ...).
namespace adms::server {

// The durable store. Every method is synchronous and blocking: the server calls writes from one
// writer thread off the I/O threads. Expected failures come back as storage_error, never as
// exceptions (a command_chooser that throws is the exception: the claim rolls back and the
// exception propagates). Each write call is one transaction: all of it is stored or none.
// Thread safety: implementations must accept calls from any thread concurrently.
class storage {
  public:
    virtual ~storage() = default;

    // Inserts or updates a device row (all fields but `options`), keeping the earliest first_seen
    // and merging stamps with protocol::merge_stamp. Returns the row as stored. An alias used by
    // another device is an error.
    virtual storage_result<device_record> upsert_device(const device_record& device) = 0;
    // One device with its options; nullopt inside the result when unknown.
    virtual storage_result<std::optional<device_record>>
    load_device(std::string_view serial_number) = 0;
    // Every device with its options, ordered by serial number (for start-up).
    virtual storage_result<std::vector<device_record>> load_devices() = 0;
    // Sets option values (last value wins per key); creates the device row when missing.
    virtual storage_result<std::size_t>
    store_device_options(std::string_view serial_number,
                         std::span<const protocol::key_value> options, instant received_at) = 0;

    // Stores an ATTLOG batch idempotently: a punch with the same serial number, PIN, local time,
    // status and verify as a stored one counts as a duplicate (also within the batch).
    virtual storage_result<store_counts> store_punches(std::string_view serial_number,
                                                       std::span<const punch_input> punches,
                                                       instant received_at, bool quarantined) = 0;
    // Stored punches, oldest first.
    virtual storage_result<std::vector<stored_punch>> list_punches(const list_query& query) = 0;
    // Punches matching `filter`, oldest first (or newest first), at most filter.limit. The
    // serial number list is bound one parameter each: SQLite's limit on bound parameters (32766
    // by default) caps its length, and a longer list is an error value.
    virtual storage_result<std::vector<stored_punch>> query_punches(const punch_filter& filter) = 0;
    // The largest punch id stored (0 when none): an export's upper bound.
    virtual storage_result<std::int64_t> last_punch_id() = 0;
    // Clears the quarantine flag of a device's punches (after the operator approves it) and gives
    // them new ids after every existing one, in their order: a cursor reader sees them next.
    virtual storage_result<std::size_t> release_quarantine(std::string_view serial_number) = 0;

    // Keeps the lines a parser rejected; the same text in the same table counts as a duplicate.
    virtual storage_result<store_counts>
    store_rejected_lines(std::string_view serial_number, std::string_view table,
                         std::span<const protocol::rejected_line> lines, instant received_at) = 0;
    virtual storage_result<std::vector<stored_rejected_line>>
    list_rejected_lines(const list_query& query) = 0;

    // Stores an OPERLOG batch: every line in the OPERLOG log (an identical line from the same
    // device counts as a duplicate), and each USER line also upserted as the device's user.
    virtual storage_result<store_counts>
    store_operlog(std::string_view serial_number, std::span<const protocol::operlog_record> lines,
                  instant received_at) = 0;
    virtual storage_result<std::vector<stored_operlog_line>>
    list_operlog(const list_query& query) = 0;
    // A device's users, ordered by PIN.
    virtual storage_result<std::vector<stored_user>> list_users(std::string_view serial_number) = 0;

    // Keeps the body of an upload to a table the server does not parse; returns its id.
    virtual storage_result<std::int64_t> store_table_body(std::string_view serial_number,
                                                          std::string_view table,
                                                          std::string_view body,
                                                          instant received_at) = 0;
    virtual storage_result<std::vector<stored_table_body>>
    list_table_bodies(const list_query& query) = 0;

    // Keeps a photo; the same file name from the same device counts as a duplicate.
    virtual storage_result<store_counts> store_photo(std::string_view serial_number,
                                                     std::string_view file_name,
                                                     std::string_view bytes,
                                                     instant received_at) = 0;
    virtual storage_result<std::vector<stored_photo>> list_photos(const list_query& query) = 0;

    // Queues a command for a device (known or not yet seen); returns its id.
    virtual storage_result<std::string> enqueue_command(std::string_view serial_number,
                                                        std::string_view text,
                                                        std::string_view kind,
                                                        instant created_at) = 0;
    // In one transaction: returns the oldest pending (queued or sent) command of `serial_number`
    // whose kind starts with `kind_prefix` (compared byte for byte, no wildcards), or enqueues a
    // new one (text, kind) and returns it with created = true.
    virtual storage_result<enqueued_command>
    enqueue_command_unless_pending(std::string_view serial_number, std::string_view text,
                                   std::string_view kind, std::string_view kind_prefix,
                                   instant created_at) = 0;
    // One command of a device by id; nullopt inside when unknown.
    virtual storage_result<std::optional<queued_command>>
    find_command(std::string_view serial_number, std::string_view id) = 0;
    // Claims commands for one poll, in one transaction: expires sent commands that reached
    // max_attempts and waited resend_after, offers the sendable ones (queued, or sent at least
    // resend_after ago) oldest first to `choose`, marks the chosen ones sent (sent_at = now,
    // attempts + 1) and returns them in the order chosen. Ids not offered are ignored. Two
    // claims never return the same command inside resend_after.
    virtual storage_result<std::vector<queued_command>>
    claim_commands(std::string_view serial_number, instant now, const resend_policy& policy,
                   const command_chooser& choose) = 0;
    // Records devicecmd results (one transaction): each result is logged, and matched by
    // (serial number, id) to its command, which becomes done (Return >= 0) or failed.
    virtual storage_result<std::vector<result_match>>
    record_command_results(std::string_view serial_number,
                           std::span<const protocol::command_result> results,
                           instant received_at) = 0;
    virtual storage_result<std::vector<stored_command_result>>
    list_command_results(const list_query& query) = 0;
    // A device's pending commands (queued, sent) and its `recent` latest finished ones, oldest
    // first.
    virtual storage_result<std::vector<queued_command>>
    list_commands(std::string_view serial_number, std::size_t recent = 50) = 0;

    // Appends drift-watch points (one transaction) and deletes each listed device's points
    // measured before `keep_after`.
    virtual storage_status store_clock_offsets(std::span<const clock_offset_point> points,
                                               instant keep_after) = 0;
    // A device's recorded offsets in the order they were recorded (by id).
    virtual storage_result<std::vector<stored_clock_offset>>
    list_clock_offsets(const clock_offset_query& query) = 0;

    // Group commit: runs `work` inside one transaction committed once at the end, so the writes
    // of many requests share one commit (one fsync). Each write call `work` makes on this thread
    // becomes a savepoint of that transaction: a call that fails is undone alone and returns its
    // error, the others stand. The result is the commit's: when it is an error, nothing `work`
    // wrote is stored, whatever its calls returned (and `work` may not have run at all, e.g. when
    // the write lock could not be taken). `work` must not throw.
    virtual storage_status write_batch(const std::function<void()>& work) = 0;

    // Answers when the database can be read (a trivial query on the read connection): for
    // /healthz.
    virtual storage_status check() = 0;
    // A small durable write (one transaction, committed to disk): fails as an upload would while
    // the disk is full, read-only or locked. The server probes with it to notice recovery.
    virtual storage_status probe() = 0;

    // Closes the store; later calls return an error. Safe to call twice.
    virtual storage_status close() = 0;
};

} // namespace adms::server
