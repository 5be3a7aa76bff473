#pragma once

#include "protocol/operlog.hpp"
#include "server/storage/command_store.hpp"
#include "server/storage/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

// The latest command admsd queued for one (device, PIN, kind, key) while provisioning
// (docs/personnel.md), with its command's state as the queue has it now: what was sent and
// whether the device took it.
struct provision_item {
    std::string serial_number;
    std::string pin;
    std::string kind; // "user", "biometric", "photo", "deletion"
    std::string key;
    std::string content_hash;
    std::string command_id;
    instant planned_at{};
    // The command's state and Return= (nullopt when the queue no longer has the command).
    std::optional<command_state> state;
    std::optional<int> return_code;
    friend bool operator==(const provision_item&, const provision_item&) = default;
};

// A template a device told admsd it holds (uploaded by it, or acknowledged when admsd sent it).
struct device_template {
    std::string serial_number;
    std::string pin;
    std::string key;          // "<type>:<no>:<index>"
    std::string content_hash; // the planner's template_hash
    instant updated_at{};
    friend bool operator==(const device_template&, const device_template&) = default;
};

// Reads of the provisioning state (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class provision_store {
  public:
    // A device's items, ordered by (pin, kind, key).
    virtual storage_result<std::vector<provision_item>>
    items_of(std::string_view serial_number) = 0;
    // The users a device described in its uploads (USER lines), ordered by PIN.
    virtual storage_result<std::vector<protocol::user_info>>
    device_users(std::string_view serial_number) = 0;
    // The templates a device holds, ordered by (pin, key).
    virtual storage_result<std::vector<device_template>>
    device_templates(std::string_view serial_number) = 0;

  protected:
    ~provision_store() = default;
};

// Writes of the provisioning state; reached only through a write_tx (database.hpp).
class provision_writer {
  public:
    // Records `item` (its command queued in the same batch) as the latest of its key.
    virtual storage_status record_item(const provision_item& item) = 0;
    // Forgets everything admsd believes a device holds or was sent (items, uploaded users and
    // templates): the next plan sends everything again (a replaced or wiped terminal).
    virtual storage_status forget_device(std::string_view serial_number) = 0;
    // Records that a device holds a template (an upload, or an acknowledged command).
    virtual storage_status store_device_template(const device_template& t) = 0;
    // A user and their templates are gone from a device (an acknowledged deletion, or the
    // device said so): its uploaded user, its templates and the items of that PIN go.
    virtual storage_status forget_device_user(std::string_view serial_number,
                                              std::string_view pin) = 0;

  protected:
    ~provision_writer() = default;
};

} // namespace adms::server
