#pragma once

#include "server/config/settings.hpp"

#include <cstdio>
#include <memory>
#include <string>

namespace adms::server {

// The whole server: settings, storage, device registry, the I/O threads and the listener.
// Thread safety: start() and stop() are called from one controlling thread (main, or a test).
class app {
  public:
    // Logs go to `log_output` (stdout by default; tests pass a file to read them back).
    explicit app(settings config, std::FILE* log_output = stdout);
    ~app();
    app(const app&) = delete;
    app& operator=(const app&) = delete;

    // What start() did: the bound port, or one line saying why the server cannot run.
    struct start_result {
        unsigned short port = 0;
        unsigned short admin_port = 0; // the admin API's own port; 0 when it shares `port`
        std::string error;
        unsigned short tls_port = 0; // the TLS listener's port; 0 without tls_listen
        unsigned short ntp_port = 0; // the SNTP server's UDP port; 0 without ntp_listen
        explicit operator bool() const { return error.empty(); }
    };

    // Opens the database, binds the listener (port 0 picks a free port), logs the start line and
    // starts the I/O threads. Returns at once.
    start_result start();

    // Stops accepting, lets in-flight requests finish (bounded), joins every thread and closes
    // the database. Idempotent.
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace adms::server
