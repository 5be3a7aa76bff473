#pragma once

#include "protocol/devicecmd.hpp"
#include "server/storage/result.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

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

// The state named `text` (as to_string writes it); nullopt for any other text.
constexpr std::optional<command_state> parse_command_state(std::string_view text)
{
    for (auto s : {command_state::queued, command_state::sent, command_state::done,
                   command_state::failed, command_state::expired, command_state::unsendable}) {
        if (to_string(s) == text) {
            return s;
        }
    }
    return std::nullopt;
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

// A command id and whether this call created it.
struct enqueued_command {
    std::string id;
    bool created = false;
};

// Reads of the per-device command queue (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class command_store {
  public:
    // One command of a device by id; nullopt inside when unknown.
    virtual storage_result<std::optional<queued_command>>
    find_command(std::string_view serial_number, std::string_view id) = 0;
    // A device's pending commands (queued, sent) and its `recent` latest finished ones, oldest
    // first.
    virtual storage_result<std::vector<queued_command>>
    list_commands(std::string_view serial_number, std::size_t recent = 50) = 0;

  protected:
    ~command_store() = default;
};

// Writes of the command queue; reached only through a write_tx (database.hpp).
class command_writer {
  public:
    // Queues a command for a device (known or not yet seen); returns its id.
    virtual storage_result<std::string> enqueue_command(std::string_view serial_number,
                                                        std::string_view text,
                                                        std::string_view kind,
                                                        instant created_at) = 0;
    // Returns the oldest pending (queued or sent) command of `serial_number` whose kind starts
    // with `kind_prefix` (compared byte for byte, no wildcards), or enqueues a new one (text,
    // kind) and returns it with created = true; no other writer can queue one in between.
    virtual storage_result<enqueued_command>
    enqueue_command_unless_pending(std::string_view serial_number, std::string_view text,
                                   std::string_view kind, std::string_view kind_prefix,
                                   instant created_at) = 0;
    // Claims commands for one poll: expires sent commands that reached max_attempts and waited
    // resend_after, offers the sendable ones (queued, or sent at least resend_after ago) oldest
    // first to `choose`, marks the chosen ones sent (sent_at = now, attempts + 1) and returns
    // them in the order chosen. Ids not offered are ignored. Two claims never return the same
    // command inside resend_after.
    virtual storage_result<std::vector<queued_command>>
    claim_commands(std::string_view serial_number, instant now, const resend_policy& policy,
                   const command_chooser& choose) = 0;
    // Replaces the text of a device's command by the one it went out with (a time sync's
    // DateTime is encoded when it is sent). An unknown id changes nothing.
    virtual storage_status set_command_text(std::string_view serial_number, std::string_view id,
                                            std::string_view text) = 0;
    // Records devicecmd results: each result is logged, and matched by (serial number, id) to
    // its command, which becomes done (Return >= 0) or failed.
    virtual storage_result<std::vector<result_match>>
    record_command_results(std::string_view serial_number,
                           std::span<const protocol::command_result> results,
                           instant received_at) = 0;

  protected:
    ~command_writer() = default;
};

} // namespace adms::server
