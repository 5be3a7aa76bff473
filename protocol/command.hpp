#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace adms::protocol {

// A command queued for one device: `id` is echoed back in the devicecmd result.
struct device_command {
    std::string id;   // 1 to 16 letters or digits
    std::string text; // e.g. "SET OPTIONS DateTime=583080894", "REBOOT"
};

// True for 1 to 16 ASCII letters or digits.
bool is_valid_command_id(std::string_view id);

// True for a non-empty command with no CR, LF or NUL (any of those would split the reply).
bool is_valid_command_text(std::string_view text);

// True for the REBOOT command, which must be the last line of a reply.
bool is_reboot_command(std::string_view text);

// Renders `C:<id>:<text>`, or nullopt when the id or the text is invalid.
std::optional<std::string> render_command(const device_command& command);

// How much one getrequest reply may carry (reference §1.3; GPRS units take 10 KB).
struct batch_limits {
    std::size_t max_commands = 200;
    std::size_t max_bytes = 40 * 1024;
};

// One getrequest reply built from the head of a device's queue.
struct command_batch {
    std::string body;                    // "OK" when nothing is sent, else C: lines joined by LF
    std::vector<std::string> sent_ids;   // ids in the body, in order
    std::vector<std::string> unsendable; // ids that can never be sent: invalid, or alone too large
};

// Builds the reply for a poll from `queue` (oldest first). Commands go in queue order until the
// next one would break a limit; REBOOT is held back and put last (at most one per reply), and is
// left for a later poll when it no longer fits or when a command queued before it did not fit.
// Commands that could never be sent are reported in `unsendable` (so the queue cannot jam) and
// skipped.
command_batch build_command_batch(std::span<const device_command> queue, batch_limits limits = {});

} // namespace adms::protocol
