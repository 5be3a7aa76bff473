#include "protocol/command.hpp"

#include <algorithm>
#include <cctype>

namespace adms::protocol {
namespace {

std::string_view trim(std::string_view text)
{
    auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

} // namespace

bool is_valid_command_id(std::string_view id)
{
    return !id.empty() && id.size() <= 16 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 &&
               static_cast<unsigned char>(c) < 0x80;
    });
}

bool is_valid_command_text(std::string_view text)
{
    return !trim(text).empty() &&
           text.find_first_of(std::string_view{"\r\n\0", 3}) == std::string_view::npos;
}

bool is_reboot_command(std::string_view text)
{
    return trim(text) == "REBOOT";
}

std::optional<std::string> render_command(const device_command& command)
{
    if (!is_valid_command_id(command.id) || !is_valid_command_text(command.text)) {
        return std::nullopt;
    }
    std::string line = "C:";
    line += command.id;
    line += ':';
    line += command.text;
    return line;
}

command_batch build_command_batch(std::span<const device_command> queue, batch_limits limits)
{
    command_batch batch;
    std::string body;
    std::size_t count = 0;
    // Appends one rendered line if both limits still hold; the LF separator counts too.
    auto try_append = [&](const std::string& line, const std::string& id) {
        std::size_t added = line.size() + (count == 0 ? 0 : 1);
        if (count + 1 > limits.max_commands || body.size() + added > limits.max_bytes) {
            return false;
        }
        if (count != 0) {
            body += '\n';
        }
        body += line;
        batch.sent_ids.push_back(id);
        ++count;
        return true;
    };

    const device_command* reboot = nullptr;
    std::optional<std::string> reboot_line;
    bool full = false;
    bool left_out_before_reboot = false; // a command queued before REBOOT waits for next poll
    for (const auto& command : queue) {
        auto line = render_command(command);
        if (!line || line->size() > limits.max_bytes) {
            batch.unsendable.push_back(command.id);
            continue;
        }
        if (is_reboot_command(command.text)) {
            if (reboot == nullptr) {
                reboot = &command;
                reboot_line = std::move(line);
                left_out_before_reboot = full;
            }
            continue;
        }
        if (!full && !try_append(*line, command.id)) {
            full = true; // keep queue order: nothing after this one goes in this reply
        }
    }
    if (reboot != nullptr && !left_out_before_reboot) {
        try_append(*reboot_line, reboot->id);
    }
    batch.body = count == 0 ? "OK" : std::move(body);
    return batch;
}

} // namespace adms::protocol
