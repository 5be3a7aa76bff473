#pragma once

#include "server/http/json_input.hpp"
#include "server/http/message.hpp"
#include "server/http/router.hpp"
#include "server/personnel/directory_service.hpp"

#include <boost/asio/awaitable.hpp>

#include <string_view>

namespace adms::server {

// Reads the body of POST /persons: pin required; name, card, privilege, password, verify,
// status, external_id, areas optional (defaults: "", "", 0, none, -1, active, "", []).
input_result<personnel::person> parse_person_create(std::string_view body);
// Reads the body of PATCH /persons/{pin}: the fields to change (pin and source are not).
input_result<personnel::person_patch> parse_person_patch(std::string_view body);

// The admin API's people directory (docs/personnel.md): /areas and /persons. Routes in
// server/routes.cpp, behind the admin token like the rest of the admin API.
// Thread safety: handlers may run on many I/O threads at once; the directory guards itself.
class persons_api {
  public:
    explicit persons_api(personnel::directory_service& directory) : directory_{directory} {}

    using handler = boost::asio::awaitable<http_response> (persons_api::*)(const http_request&,
                                                                           const route_match&);
    // The route handler calling `h`.
    route_handler route(handler h);

    boost::asio::awaitable<http_response> list_areas(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> create_area(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> get_area(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> patch_area(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> delete_area(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> list_persons(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> create_person(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> get_person(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> patch_person(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> delete_person(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> person_templates(const http_request&, const route_match&);

  private:
    personnel::directory_service& directory_;
};

} // namespace adms::server
