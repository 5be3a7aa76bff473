#pragma once

#include "server/observability/log_format.hpp"
#include "tz/zone.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adms::server {

// Writes admsd's log to a FILE (stdout by default): Django runserver lines and readable event
// lines, or one JSON object per line with the same content (--log-format json).
// Thread safety: all member functions may be called from any thread; lines never interleave.
class logger {
  public:
    // `zone` is the server's zone: request lines show the server's local time.
    logger(tz::zone zone, bool json, std::FILE* out = stdout);

    // One request line.
    void request(std::chrono::system_clock::time_point at, std::string_view method,
                 std::string_view target, unsigned version, unsigned status,
                 std::size_t body_bytes);

    // A readable event line (or block); `fields` carry the same facts for JSON consumers.
    // Request-supplied text in `fields` is escaped here; `text` must already be safe.
    void event(std::string_view kind, std::string_view text,
               const std::vector<std::pair<std::string, std::string>>& fields = {});

    // The time-sync block.
    void time_sync(const time_sync_event& e);

  private:
    void write(const std::string& line);

    tz::zone zone_;
    bool json_;
    std::FILE* out_;
    std::mutex mutex_;
};

} // namespace adms::server
