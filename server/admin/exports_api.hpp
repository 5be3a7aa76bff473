#pragma once

#include "server/http/json_input.hpp"
#include "server/http/message.hpp"
#include "server/http/router.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string_view>

namespace adms::server {

class export_service;

// Reads the body of POST /exports/{name}/run: {"date": "YYYY-MM-DD"} (the devices' wall-clock
// day to write), nothing else.
input_result<std::chrono::local_days> parse_export_run(std::string_view body);

// The admin API's payroll exports (docs/admin-api.md): GET /exports lists them with their
// schedule, POST /exports/{name}/run writes one day's file now. Routes in server/routes.cpp,
// behind the admin token like the rest of the admin API.
// Thread safety: handlers may run on many I/O threads at once; the export service guards itself.
class exports_api {
  public:
    explicit exports_api(export_service& exports) : exports_{exports} {}

    using handler = boost::asio::awaitable<http_response> (exports_api::*)(const http_request&,
                                                                           const route_match&);
    // The route handler calling `h`.
    route_handler route(handler h);

    // GET /exports
    boost::asio::awaitable<http_response> list(const http_request&, const route_match&);
    // POST /exports/{name}/run
    boost::asio::awaitable<http_response> run(const http_request& request,
                                              const route_match& match);

  private:
    export_service& exports_;
};

} // namespace adms::server
