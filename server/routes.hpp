#pragma once

#include "server/http/router.hpp"

#include <vector>

namespace adms::server {

class admin_api;
class device_service;
class exports_api;
class persons_api;
class time_service;
struct settings;

// Every endpoint of the server, in one table (part of the composition root: it names the
// handlers of every subsystem). docs/admin-api.md lists the same table for readers.
std::vector<route> server_routes(const settings& config, device_service& devices,
                                 const time_service& times, admin_api& admin, exports_api& exports,
                                 persons_api& persons);

} // namespace adms::server
