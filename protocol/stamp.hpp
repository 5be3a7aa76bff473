#pragma once

#include <optional>
#include <string>

namespace adms::protocol {

// The stamp to keep when a device sends `incoming` and `current` is stored. When both are all
// digits the larger number wins (leading zeros ignored, any length); otherwise a non-empty
// `incoming` replaces `current` (text stamps cannot be ordered). An empty/absent `incoming` never
// erases `current`.
std::optional<std::string> merge_stamp(const std::optional<std::string>& current,
                                       const std::optional<std::string>& incoming);

} // namespace adms::protocol
