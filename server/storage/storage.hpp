#pragma once

#include "protocol/attlog.hpp"
#include "protocol/devicecmd.hpp"
#include "protocol/operlog.hpp"
#include "protocol/parse_result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

// The durable store behind the server: devices, punches, everything else a device uploads, and
// the per-device command queue. An interface with plain value types (no SQLite here: this header
// is widely included); server/sqlite_storage.hpp is the implementation.
//
// Times: `instant` is a server clock reading (UTC, milliseconds), stored as INTEGER Unix ms. A
// punch's UTC instant is `std::chrono::sys_seconds`, stored as INTEGER Unix seconds. A device's
// wall-clock time is kept as TEXT "YYYY-MM-DD HH:MM:SS", never converted.
namespace adms::server {

// A server clock reading (UTC).
using instant = std::chrono::sys_time<std::chrono::milliseconds>;

// An expected storage failure (disk full, read-only, locked, corrupt, closed): the caller answers
// 503 and does not acknowledge. Never thrown.
struct storage_error {
    std::string message; // operation and SQLite's message, e.g. "store_punches: disk is full"
};

// Either a value or the error that prevented it.
template <class T>
struct storage_result {
    std::optional<T> value;
    storage_error error; // meaningful only when `value` is empty

    storage_result(T v) : value{std::move(v)} {}
    storage_result(storage_error e) : error{std::move(e)} {}
    explicit operator bool() const { return value.has_value(); }
};

// The result of an operation that returns nothing but success.
using storage_status = storage_result<std::monostate>;

// One device, keyed by serial number. Every field is written by upsert_device except `options`.
struct device_record {
    std::string serial_number;
    instant first_seen{}; // upsert keeps the earliest
    instant last_seen{};
    std::string remote_address; // "ip:port" or "ip" of the last request
    std::string push_version;   // pushver= as sent; empty when absent (a 2.2.14 / PUSH 1.0 device)
    std::string language;       // language= as sent (numeric code)
    bool approved = false;      // admission: uploads from unapproved devices are quarantined
    std::optional<std::string> alias;         // unique among devices; empty is stored as unset
    std::optional<std::string> zone_override; // IANA zone name set by the operator
    std::string dialect;                      // "ATT", "SEC", "P320"; empty while unknown
    // The last stamps the device sent (Stamp= on uploads, as text). Never moved backwards: see
    // merge_stamp.
    std::optional<std::string> attlog_stamp;
    std::optional<std::string> operlog_stamp;
    std::optional<std::string> attphoto_stamp;
    bool full_upload_requested = false; // operator asked for a full re-upload: send stamp 0 once
    std::string info;                   // the last INFO= value, percent-decoded, as sent
    std::optional<instant> info_at;     // when it arrived
    std::optional<instant> time_sync_sent_at;      // last SET OPTIONS DateTime queued/sent
    std::optional<instant> time_sync_confirmed_at; // its last successful result
    std::string time_sync_error;                   // last time-sync failure; empty when none
    // "att" or "att-singular": set through the admin API; overrides the config file.
    std::optional<std::string> time_dialect_override;
    // Daily sync time, minutes after local midnight (0..1439): set through the admin API;
    // overrides the config file.
    std::optional<int> sync_at_minutes;
    // Periodic sync interval in minutes, 0 for explicitly off: set through the admin API;
    // overrides the config file.
    std::optional<int> sync_interval_minutes;
    // The device's option values (`table=options` uploads, INFO results), sorted by key. Filled
    // by load_device/load_devices; written only by store_device_options.
    std::vector<protocol::key_value> options;
};

// The stamp to keep when a device sends `incoming` and `current` is stored. When both are all
// digits the larger number wins (leading zeros ignored, any length); otherwise a non-empty
// `incoming` replaces `current` (text stamps cannot be ordered). An empty/absent `incoming` never
// erases `current`.
inline std::optional<std::string> merge_stamp(const std::optional<std::string>& current,
                                              const std::optional<std::string>& incoming)
{
    if (!incoming || incoming->empty()) {
        return current;
    }
    if (!current || current->empty()) {
        return incoming;
    }
    auto all_digits = [](std::string_view s) {
        for (char c : s) {
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
    };
    if (!all_digits(*current) || !all_digits(*incoming)) {
        return incoming;
    }
    auto significant = [](std::string_view s) {
        auto first = s.find_first_not_of('0');
        return first == std::string_view::npos ? std::string_view{} : s.substr(first);
    };
    auto a = significant(*current);
    auto b = significant(*incoming);
    bool incoming_larger = b.size() != a.size() ? b.size() > a.size() : b > a;
    return incoming_larger ? incoming : current;
}

// One punch to store: the parsed record, its place on the UTC timeline and the line as received.
struct punch_input {
    protocol::attendance_record record;          // the literal local time is record.time
    std::optional<std::chrono::sys_seconds> utc; // nullopt when the device's zone cannot place it
    std::string raw_line;                        // the ATTLOG line exactly as received
};

// A stored punch.
struct stored_punch {
    std::int64_t id = 0; // increasing: use as a cursor (list_query::after_id)
    std::string serial_number;
    std::string pin;
    std::string local_time; // "YYYY-MM-DD HH:MM:SS", the device's wall-clock time
    std::optional<std::chrono::sys_seconds> utc;
    int status = 0;
    int verify = 0;
    std::string work_code;
    std::optional<std::uint64_t> sequence;
    std::string raw_line;
    instant received_at{};
    bool quarantined = false; // from a device that was not approved when it arrived
    friend bool operator==(const stored_punch&, const stored_punch&) = default;
};

// How many items of a batch were new and how many were already stored.
struct store_counts {
    std::size_t stored = 0;
    std::size_t duplicate = 0;
    friend bool operator==(const store_counts&, const store_counts&) = default;
};

// Which stored items a list call returns: oldest first, ids greater than `after_id`.
struct list_query {
    std::optional<std::string> serial_number = std::nullopt; // nullopt: every device
    std::int64_t after_id = 0;
    std::size_t limit = 1000;
};

// Which punches query_punches returns. Every condition set must hold.
struct punch_filter {
    // Every member has an initializer, so designated initializers may leave any out.
    std::vector<std::string> serial_numbers = {}; // empty: every device
    std::optional<std::string> pin = std::nullopt;
    // utc >= utc_from and utc < utc_to: a punch without utc never matches either bound.
    std::optional<std::chrono::sys_seconds> utc_from = std::nullopt;
    std::optional<std::chrono::sys_seconds> utc_to = std::nullopt;
    // local_time >= local_from and local_time < local_to ("YYYY-MM-DD HH:MM:SS", compared as text)
    std::optional<std::string> local_from = std::nullopt;
    std::optional<std::string> local_to = std::nullopt;
    std::optional<instant> received_from = std::nullopt; // received_at >= received_from
    std::int64_t after_id = 0;                           // id > after_id
    std::optional<std::int64_t> up_to_id = std::nullopt; // id <= up_to_id
    bool include_quarantined = false;
    // Largest id first (the id bounds still apply): page with up_to_id = last id - 1.
    bool newest_first = false;
    std::size_t limit = 1000;
};

// A body line a parser could not use, as stored.
struct stored_rejected_line {
    std::int64_t id = 0;
    std::string serial_number;
    std::string table; // the upload's table=, e.g. "ATTLOG"
    std::size_t line_number = 0;
    std::string text;
    std::string reason;
    instant received_at{};
};

// One OPERLOG line as stored (every tag: OPLOG, USER, FP, FACE, BIOPHOTO, USERPIC, unknown).
struct stored_operlog_line {
    std::int64_t id = 0;
    std::string serial_number;
    std::string tag;
    std::string raw;
    std::optional<std::string> pin;             // PIN= (or Pin=) of a non-OPLOG line
    std::optional<protocol::oplog_entry> oplog; // OPLOG lines: code, operator, time, objects
    instant received_at{};
};

// A user as the device last described it in a USER line.
struct stored_user {
    std::string serial_number;
    protocol::user_info user;
    std::string raw; // the USER line as received
    instant updated_at{};
};

// The body of an upload to a table the server does not parse, kept raw.
struct stored_table_body {
    std::int64_t id = 0;
    std::string serial_number;
    std::string table;
    std::string body; // bytes as received
    instant received_at{};
};

// An uploaded photo (ATTPHOTO, fdata).
struct stored_photo {
    std::int64_t id = 0;
    std::string serial_number;
    std::string file_name; // PIN=<file> as sent
    std::string bytes;     // the JPEG
    instant received_at{};
};

// Where a queued command is in its life.
enum class command_state {
    queued,     // waiting for a poll
    sent,       // in a getrequest reply, no result yet
    done,       // result with Return=0 (or positive)
    failed,     // result with a negative Return
    expired,    // sent max_attempts times without a result
    unsendable, // can never be sent (invalid id or text, too large for any reply)
};

// The name stored for a state ("queued", "sent", ...).
constexpr std::string_view to_string(command_state state)
{
    switch (state) {
    case command_state::queued:
        return "queued";
    case command_state::sent:
        return "sent";
    case command_state::done:
        return "done";
    case command_state::failed:
        return "failed";
    case command_state::expired:
        return "expired";
    case command_state::unsendable:
        return "unsendable";
    }
    return "unknown";
}

// A command in a device's queue, with its result once one arrived.
struct queued_command {
    std::string id; // decimal digits, 1 to 16: valid as a protocol command id
    std::string serial_number;
    std::string text; // e.g. "SET OPTIONS DateTime=583080894"
    std::string kind; // who queued it and why, e.g. "time-sync", "admin"
    command_state state = command_state::queued;
    instant created_at{};
    std::optional<instant> sent_at; // the last time it went out
    int attempts = 0;               // how many times it went out
    std::optional<int> return_code;
    std::string result_command; // CMD= of the result
    std::string result_content; // Content= of Shell/GetFile results
    std::string result_info;    // key=value lines of INFO results, joined by '\n'
    std::optional<instant> result_at;
};

// When a sent command with no result may go out again, and how often at most.
struct resend_policy {
    std::chrono::milliseconds resend_after{std::chrono::minutes{5}};
    int max_attempts = 3;
};

// What the caller of claim_commands decided for one poll (from protocol::build_command_batch).
struct command_choice {
    std::vector<std::string> send;       // ids in the reply: marked sent
    std::vector<std::string> unsendable; // ids that can never be sent: marked unsendable
};

// Chooses which of the sendable commands (oldest first) go out in one poll. Called inside the
// claim's transaction, with the storage's write lock held: it must not call the storage.
using command_chooser = std::function<command_choice(const std::vector<queued_command>&)>;

// How a command result matched the queue.
enum class result_match {
    matched,   // recorded: the command is now done or failed
    duplicate, // the command already had its result: ignored
    unmatched, // no command with this id for this device (kept in the result log)
};

// A devicecmd result as logged (every result is kept, matched or not).
struct stored_command_result {
    std::int64_t id = 0;
    std::string serial_number;
    protocol::command_result result;
    result_match match = result_match::unmatched;
    instant received_at{};
};

// One estimate of a device's clock offset, as the drift watch records it.
struct clock_offset_point {
    std::string serial_number;
    instant measured_at{};           // when the evidence was taken (sync sent, punch received)
    std::int64_t offset_ms = 0;      // device clock - server clock
    std::int64_t uncertainty_ms = 0; // ± around offset_ms
    std::string source;              // "sync" or "punches"
};

// A recorded offset with its id (increasing: a cursor).
struct stored_clock_offset {
    std::int64_t id = 0;
    clock_offset_point point;
};

// Which offsets list_clock_offsets returns: one device's, measured in [from, to), with id >
// after_id, in recording order.
struct clock_offset_query {
    std::string serial_number;
    std::optional<instant> from = std::nullopt;
    std::optional<instant> to = std::nullopt;
    std::int64_t after_id = 0;
    std::size_t limit = 1000;
};

// A command id and whether this call created it.
struct enqueued_command {
    std::string id;
    bool created = false;
};

// The durable store. Every method is synchronous and blocking: the server calls writes from one
// writer thread off the I/O threads. Expected failures come back as storage_error, never as
// exceptions (a command_chooser that throws is the exception: the claim rolls back and the
// exception propagates). Each write call is one transaction: all of it is stored or none.
// Thread safety: implementations must accept calls from any thread concurrently.
class storage {
  public:
    virtual ~storage() = default;

    // Inserts or updates a device row (all fields but `options`), keeping the earliest first_seen
    // and merging stamps with merge_stamp. Returns the row as stored. An alias used by another
    // device is an error.
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
    // Replaces the text of a device's command by the one it went out with (a time sync's
    // DateTime is encoded when it is sent). An unknown id changes nothing.
    virtual storage_status set_command_text(std::string_view serial_number, std::string_view id,
                                            std::string_view text) = 0;
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
