#pragma once

#include "server/config/settings.hpp"

#include <string>

namespace adms::server {

// What `admsd healthcheck` found: its exit status and one line for the operator.
struct healthcheck_result {
    int exit_code = 1; // 0 healthy, 1 unhealthy or unreachable
    std::string message;
};

// Asks the server configured by `config` for GET /healthz on its device port (a wildcard listen
// address is probed on loopback), within `timeout`. Lets a slim container check itself without
// curl: the image's HEALTHCHECK runs `admsd healthcheck`.
healthcheck_result run_healthcheck(const settings& config,
                                   std::chrono::seconds timeout = std::chrono::seconds{5});

} // namespace adms::server
