#pragma once

// The one alias header for Asio and Beast (as in Beast's examples). Include it only from .cpp
// files: these headers dominate build time on a 2-core machine.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace adms::server {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
} // namespace adms::server
