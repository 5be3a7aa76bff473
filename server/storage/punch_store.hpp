#pragma once

#include "protocol/attlog.hpp"
#include "server/storage/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

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

// What store_punches did: the counts, and for each input punch the id it was stored under (0 for
// a duplicate), so the events announcing the new ones can be written with them.
struct punch_counts : store_counts {
    std::vector<std::int64_t> ids;
};

// Reads of the stored punches (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class punch_store {
  public:
    // Punches matching `filter`, oldest first (or newest first), at most filter.limit. A backend
    // may cap the length of the serial number list (SQLite: one bound parameter each, 32766 by
    // default); a longer list is an error value.
    virtual storage_result<std::vector<stored_punch>> query_punches(const punch_filter& filter) = 0;
    // The largest punch id stored (0 when none): an export's upper bound.
    virtual storage_result<std::int64_t> last_punch_id() = 0;

  protected:
    ~punch_store() = default;
};

// Writes of punches; reached only through a write_tx (database.hpp). One call per request, not
// per punch: a batch of punches is one call.
class punch_writer {
  public:
    // Stores an ATTLOG batch idempotently: a punch with the same serial number, PIN, local time,
    // status and verify as a stored one counts as a duplicate (also within the batch).
    virtual storage_result<punch_counts> store_punches(std::string_view serial_number,
                                                       std::span<const punch_input> punches,
                                                       instant received_at, bool quarantined) = 0;
    // Clears the quarantine flag of a device's punches (after the operator approves it) and gives
    // them new ids after every existing one, in their order: a cursor reader sees them next.
    // Returns the released punches, as now stored.
    virtual storage_result<std::vector<stored_punch>>
    release_quarantine(std::string_view serial_number) = 0;

  protected:
    ~punch_writer() = default;
};

} // namespace adms::server
