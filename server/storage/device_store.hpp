#pragma once

#include "protocol/parse_result.hpp"
#include "server/storage/result.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

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
    // protocol::merge_stamp.
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
    // The area whose people the device is provisioned with (issue 17); nullopt: none, and the
    // device is given nobody. An existing area's code (the storage refuses others).
    std::optional<std::string> area;
    // The device's option values (`table=options` uploads, INFO results), sorted by key. Filled
    // by load_device/load_devices; written only by store_device_options.
    std::vector<protocol::key_value> options;
};

// Reads of the device rows (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class device_store {
  public:
    // Every device with its options, ordered by serial number (for start-up).
    virtual storage_result<std::vector<device_record>> load_devices() = 0;

  protected:
    ~device_store() = default;
};

// Writes of the device rows; reached only through a write_tx (database.hpp).
class device_writer {
  public:
    // Inserts or updates a device row (all fields but `options`), keeping the earliest first_seen
    // and merging stamps with protocol::merge_stamp. Returns the row as stored. An alias used by
    // another device is an error.
    virtual storage_result<device_record> upsert_device(const device_record& device) = 0;
    // Sets option values (last value wins per key); creates the device row when missing.
    virtual storage_result<std::size_t>
    store_device_options(std::string_view serial_number,
                         std::span<const protocol::key_value> options, instant received_at) = 0;

  protected:
    ~device_writer() = default;
};

} // namespace adms::server
