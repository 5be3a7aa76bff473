#include "server/app.hpp"

#include "protocol/zk_time.hpp"
#include "server/admin/admin_api.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/devices/device_service.hpp"
#include "server/http/net.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/security/access_control.hpp"
#include "server/security/admin_token.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "server/timekeeping/mqtt_time_service.hpp"
#include "server/timekeeping/ntp_responder.hpp"
#include "server/timekeeping/time_service.hpp"
#include "server/version.hpp"
#include "tz/zone.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace adms::server {
namespace {

constexpr std::size_t header_limit_bytes = 16 * 1024;
constexpr auto write_timeout = std::chrono::seconds{30};
constexpr auto drain_timeout = std::chrono::seconds{10};

// The instant for a Date header: the current second, rounded to the nearest.
std::chrono::sys_seconds rounded_now()
{
    return std::chrono::round<std::chrono::seconds>(std::chrono::system_clock::now());
}

// Splits "host:port" (IPv6 as "[::1]:port").
std::pair<std::string, std::string> split_listen(const std::string& listen)
{
    auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return {host, listen.substr(colon + 1)};
}

// The configured zone; load_settings() validated it, and start() reports a bad one.
tz::zone zone_or_utc(const std::string& name)
{
    auto found = tz::locate_zone(name);
    return found ? *found.value : *tz::locate_zone("UTC").value;
}

// What a listener serves: devices and the admin API on one port, or each on its own.
enum class listener_role { both, devices, admin };

// Which handler a path goes to on a listener of `role`: nullopt when that listener does not
// serve it (404). /healthz is served everywhere: container health checks use the device port.
enum class handler_kind { devices, admin, time_service };
std::optional<handler_kind> handler_for(std::string_view path, listener_role role)
{
    if (path.starts_with("/iclock/")) {
        return role == listener_role::admin ? std::nullopt : std::optional{handler_kind::devices};
    }
    if (path.starts_with("/tylink/")) {
        return role == listener_role::admin ? std::nullopt
                                            : std::optional{handler_kind::time_service};
    }
    if (role == listener_role::devices && path != "/healthz") {
        return std::nullopt;
    }
    return handler_kind::admin;
}

} // namespace

struct app::impl {
    impl(settings s, std::FILE* log_output)
        : config{std::move(s)}, zone{zone_or_utc(config.time_zone)},
          log{zone, config.log_format == "json", log_output}, io{static_cast<int>(config.threads)},
          acceptor{io}, admin_acceptor{io}, tls_acceptor{io}, reader{2}
    {
    }

    settings config;
    tz::zone zone;
    logger log;
    net::io_context io;
    tcp::acceptor acceptor;
    tcp::acceptor admin_acceptor;                   // open only with a separate admin_listen
    tcp::acceptor tls_acceptor;                     // open only with tls_listen
    std::unique_ptr<net::ssl::context> tls_context; // with tls_listen or admin_tls
    blocking_pool reader; // admin API reads (a read connection of their own)
    metrics stats;
    command_waiters waiters;
    std::unique_ptr<sqlite_database> store;
    std::unique_ptr<commit_queue> writer; // declared after `store`: stops before it closes
    std::unique_ptr<device_service> devices;
    std::unique_ptr<admin_api> admin;
    std::unique_ptr<time_service> times;
    std::unique_ptr<mqtt_time_service> mqtt; // with mqtt_url; declared after what it uses
    std::unique_ptr<ntp_responder> ntp;      // with ntp_listen
    std::vector<std::thread> threads;
    std::atomic<int> busy{0}; // requests between read and written
    std::atomic<bool> stopping{false};
    bool started = false;

    net::awaitable<void> accept_loop(tcp::acceptor& listener, listener_role role, bool tls);
    net::awaitable<void> probe_loop();
    net::awaitable<void> session(tcp::socket socket, listener_role role, bool tls);
    template <class Stream>
    net::awaitable<void> serve(Stream& stream, const std::string& remote, listener_role role);
    net::awaitable<http_response> dispatch(const http_request& request, listener_role role);
    std::string bind(tcp::acceptor& listener, const std::string& listen);
    std::string load_tls();
    template <class Stream>
    net::awaitable<void> linger(Stream& stream);
    template <class Stream>
    net::awaitable<void> write_error(Stream& stream, unsigned version, unsigned status,
                                     std::string body, std::string_view method,
                                     std::string_view target);
};

app::app(settings config, std::FILE* log_output)
    : impl_{std::make_unique<impl>(std::move(config), log_output)}
{
}

app::~app()
{
    stop();
}

template <class Stream>
net::awaitable<void> app::impl::write_error(Stream& stream, unsigned version, unsigned status,
                                            std::string body, std::string_view method,
                                            std::string_view target)
{
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, "admsd");
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::date, protocol::format_http_date(rounded_now()));
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(write_timeout);
    auto size = res.body().size();
    co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
    log.request(std::chrono::system_clock::now(), method, target, version, status, size);
}

// A lingering close after an error reply: closing with unread request bytes makes the kernel
// reset the connection, and a client still sending (a body over the limit) may then lose the
// reply. Half-close, then read and discard what the client still sends, bounded in bytes and
// time, before the socket closes.
template <class Stream>
net::awaitable<void> app::impl::linger(Stream& stream)
{
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
        co_return; // TLS: the close_notify of the shutdown ends the connection cleanly
    }
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{2});
    std::array<char, 16 * 1024> sink{};
    for (std::size_t drained = 0; drained < 1024 * 1024;) {
        auto [ec, n] =
            co_await stream.async_read_some(net::buffer(sink), net::as_tuple(net::use_awaitable));
        if (ec) {
            break;
        }
        drained += n;
    }
}

net::awaitable<http_response> app::impl::dispatch(const http_request& request, listener_role role)
{
    auto path = std::string_view{request.target}.substr(0, request.target.find('?'));
    auto kind = handler_for(path, role);
    if (!kind) {
        co_return text_response(404, "not found\n");
    }
    if (*kind == handler_kind::devices) {
        co_return co_await devices->handle(request);
    }
    if (*kind == handler_kind::time_service) {
        co_return times->handle(request);
    }
    co_return co_await admin->handle(request);
}

net::awaitable<void> app::impl::session(tcp::socket socket, listener_role role, bool tls)
{
    boost::system::error_code ignored;
    auto peer = socket.remote_endpoint(ignored);
    std::string remote = ignored ? std::string{} : peer.address().to_string();
    if (!tls) {
        beast::tcp_stream stream{std::move(socket)};
        co_await serve(stream, remote, role);
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream{std::move(socket), *tls_context};
    // The handshake counts against the read deadline, so a client that never finishes it is
    // cut off like a slow request.
    beast::get_lowest_layer(stream).expires_after(config.read_timeout);
    auto [handshake_ec] = co_await stream.async_handshake(net::ssl::stream_base::server,
                                                          net::as_tuple(net::use_awaitable));
    if (handshake_ec) {
        co_return;
    }
    co_await serve(stream, remote, role);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{5});
    co_await stream.async_shutdown(net::as_tuple(net::use_awaitable));
}

template <class Stream>
net::awaitable<void> app::impl::serve(Stream& stream, const std::string& remote, listener_role role)
{
    beast::flat_buffer buffer;

    while (!stopping) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit_bytes);
        parser.body_limit(config.max_body_bytes);
        beast::get_lowest_layer(stream).expires_after(config.read_timeout);
        auto [ec, bytes] =
            co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
        if (ec) {
            // Closed, reset or timed out: nothing to answer. A malformed or oversized request
            // gets one clear status and the connection closes (its remaining bytes are not read).
            if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                ec != http::error::end_of_stream && ec != http::error::partial_message) {
                unsigned status = ec == http::error::body_limit     ? 413
                                  : ec == http::error::header_limit ? 431
                                                                    : 400;
                std::string reason = status == 413   ? "request body too large"
                                     : status == 431 ? "request header fields too large"
                                                     : "malformed HTTP request: " + ec.message();
                const auto& partial = parser.get();
                co_await write_error(stream, parser.is_header_done() ? partial.version() : 11,
                                     status, reason + "\n",
                                     parser.is_header_done() ? partial.method_string() : "-",
                                     parser.is_header_done() ? partial.target() : "-");
                co_await linger(stream);
            }
            break;
        }

        ++busy;
        auto started = std::chrono::steady_clock::now();
        auto& req = parser.get();
        http_request request;
        request.method = std::string{req.method_string()};
        request.target = std::string{req.target()};
        request.version = req.version();
        request.body = std::move(req.body());
        request.remote_address = remote;
        request.authorization = std::string{req[http::field::authorization]};
        request.received_at = std::chrono::system_clock::now();

        http_response response;
        try {
            response = co_await dispatch(request, role);
        } catch (const std::exception& e) {
            log.event("error",
                      fmt::format("error handling {} {}: {}", escape_for_log(request.method),
                                  escape_for_log(request.target), e.what()));
            response = text_response(500, "internal server error\n");
        }

        bool keep_alive = req.keep_alive() && !stopping;
        std::size_t body_size = 0;
        boost::system::error_code write_ec;
        if (!response.stream) {
            http::response<http::string_body> res{static_cast<http::status>(response.status),
                                                  req.version()};
            res.set(http::field::server, "admsd");
            res.set(http::field::content_type, response.content_type);
            for (const auto& [name, value] : response.headers) {
                res.set(name, value);
            }
            res.keep_alive(keep_alive);
            body_size = response.body.size();
            res.body() = std::move(response.body);
            res.prepare_payload();
            // Taken as late as possible: devices set their clocks from it.
            res.set(http::field::date, protocol::format_http_date(rounded_now()));
            beast::get_lowest_layer(stream).expires_after(write_timeout);
            std::tie(write_ec, std::ignore) =
                co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
        } else {
            // A streamed body (exports): chunked for HTTP/1.1; for HTTP/1.0 the body ends when
            // the connection closes. Each piece is written before the next is produced, so
            // memory stays bounded by one piece.
            bool chunked = req.version() >= 11;
            keep_alive = keep_alive && chunked;
            http::response<http::empty_body> res{static_cast<http::status>(response.status),
                                                 req.version()};
            res.set(http::field::server, "admsd");
            res.set(http::field::content_type, response.content_type);
            for (const auto& [name, value] : response.headers) {
                res.set(name, value);
            }
            res.keep_alive(keep_alive);
            res.chunked(chunked);
            res.set(http::field::date, protocol::format_http_date(rounded_now()));
            http::response_serializer<http::empty_body> header{res};
            beast::get_lowest_layer(stream).expires_after(write_timeout);
            std::tie(write_ec, std::ignore) = co_await http::async_write_header(
                stream, header, net::as_tuple(net::use_awaitable));
            while (!write_ec) {
                auto piece = co_await response.stream();
                if (!piece) {
                    // Failed part-way: close without the last chunk, so the client knows.
                    log.event("error", fmt::format("export {} failed part-way; connection closed",
                                                   escape_for_log(request.target)));
                    write_ec = net::error::connection_aborted;
                    break;
                }
                beast::get_lowest_layer(stream).expires_after(write_timeout);
                if (piece->empty()) {
                    if (chunked) {
                        std::tie(write_ec, std::ignore) = co_await net::async_write(
                            stream, http::make_chunk_last(), net::as_tuple(net::use_awaitable));
                    }
                    break;
                }
                body_size += piece->size();
                if (chunked) {
                    std::tie(write_ec, std::ignore) =
                        co_await net::async_write(stream, http::make_chunk(net::buffer(*piece)),
                                                  net::as_tuple(net::use_awaitable));
                } else {
                    std::tie(write_ec, std::ignore) = co_await net::async_write(
                        stream, net::buffer(*piece), net::as_tuple(net::use_awaitable));
                }
            }
        }
        --busy;
        auto path = std::string_view{request.target}.substr(0, request.target.find('?'));
        stats.request(endpoint_label(path), response.status,
                      std::chrono::steady_clock::now() - started);
        log.request(std::chrono::system_clock::now(), request.method, request.target,
                    request.version, response.status, body_size);
        if (write_ec || !keep_alive) {
            break;
        }
    }
}

net::awaitable<void> app::impl::accept_loop(tcp::acceptor& listener, listener_role role, bool tls)
{
    for (;;) {
        auto [ec, socket] =
            co_await listener.async_accept(net::make_strand(io), net::as_tuple(net::use_awaitable));
        if (ec == net::error::operation_aborted || !listener.is_open()) {
            co_return;
        }
        if (ec) {
            // Out of descriptors or a transient error: say so, pause briefly, keep serving.
            log.event("error", fmt::format("accept failed: {}", ec.message()));
            net::steady_timer pause{listener.get_executor(), std::chrono::milliseconds{100}};
            co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        auto executor = socket.get_executor();
        net::co_spawn(
            executor, session(std::move(socket), role, tls), [this](std::exception_ptr e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        log.event("error",
                                  fmt::format("connection closed after an error: {}", ex.what()));
                    }
                }
            });
    }
}

// While storage fails, a probe write every second notices recovery (and /healthz turns healthy)
// even when no device uploads.
net::awaitable<void> app::impl::probe_loop()
{
    net::steady_timer timer{io};
    while (!stopping) {
        timer.expires_after(std::chrono::seconds{1});
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        if (!stopping) {
            co_await devices->probe_storage();
            co_await devices->flush_devices();
        }
    }
}

// The certificate chain and key for the TLS listeners; one line saying what is wrong otherwise.
std::string app::impl::load_tls()
{
    if (config.tls_cert.empty() || config.tls_key.empty()) {
        return "TLS needs both tls_cert and tls_key (PEM files)";
    }
    auto context = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    // TLS 1.2 and 1.3 only; OpenSSL's defaults choose the ciphers.
    context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                         net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                         net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    boost::system::error_code ec;
    context->use_certificate_chain_file(config.tls_cert, ec);
    if (ec) {
        return fmt::format("invalid tls_cert '{}': {}", config.tls_cert, ec.message());
    }
    context->use_private_key_file(config.tls_key, net::ssl::context::pem, ec);
    if (ec) {
        return fmt::format("invalid tls_key '{}': {}", config.tls_key, ec.message());
    }
    tls_context = std::move(context);
    return {};
}

std::string app::impl::bind(tcp::acceptor& listener, const std::string& listen)
{
    auto [host, port] = split_listen(listen);
    boost::system::error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (ec) {
        return fmt::format("invalid listen '{}': '{}' is not an IP address", listen, host);
    }
    tcp::endpoint endpoint{address, static_cast<unsigned short>(std::stoi(port))};
    listener.open(endpoint.protocol(), ec);
    if (!ec) {
        listener.set_option(net::socket_base::reuse_address(true), ec);
        listener.bind(endpoint, ec);
    }
    if (!ec) {
        listener.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return fmt::format("invalid listen '{}': cannot listen: {}", listen, ec.message());
    }
    return {};
}

app::start_result app::start()
{
    auto& s = *impl_;
    if (s.started) {
        return {s.acceptor.local_endpoint().port(),
                s.admin_acceptor.is_open() ? s.admin_acceptor.local_endpoint().port()
                                           : static_cast<unsigned short>(0),
                {},
                s.tls_acceptor.is_open() ? s.tls_acceptor.local_endpoint().port()
                                         : static_cast<unsigned short>(0),
                s.ntp ? s.ntp->port() : static_cast<unsigned short>(0)};
    }
    if (auto found = tz::locate_zone(s.config.time_zone); !found) {
        return {0, 0, fmt::format("invalid time zone '{}': {}", s.config.time_zone, found.error)};
    }
    // Settings built in code (tests, embedders) skip load_settings(): check what a bad value
    // would silently weaken.
    if (auto networks = network_list::parse(s.config.device_networks); !networks.value) {
        return {0, 0, fmt::format("invalid device_networks: {}", networks.error)};
    }
    if (s.config.admin_tls && s.config.admin_listen.empty()) {
        return {0, 0,
                "admin_tls needs admin_listen: the admin API shares the device listener "
                "(use tls_listen for TLS there)"};
    }
    std::error_code fs_ec;
    std::filesystem::create_directories(s.config.data_dir, fs_ec);
    if (fs_ec) {
        return {0, 0, fmt::format("invalid data_dir '{}': {}", s.config.data_dir, fs_ec.message())};
    }
    sqlite_open_options open_options;
    // A read-only data directory (a file system remounted read-only after errors, a volume
    // mounted :ro) still lets devices poll and get their time; uploads get 503 until it is
    // writable again, which the storage notices by itself.
    open_options.read_only_fallback = true;
    auto opened = sqlite_database::open(std::filesystem::path{s.config.data_dir} / "admsd.sqlite3",
                                        open_options);
    if (!opened) {
        return {0, 0,
                fmt::format("invalid data_dir '{}': cannot open the database: {}",
                            s.config.data_dir, opened.error.message)};
    }
    s.store = std::move(*opened.value);
    s.writer = std::make_unique<commit_queue>(*s.store);
    s.devices = std::make_unique<device_service>(s.config, *s.store, *s.writer, s.log, s.zone,
                                                 s.stats, s.waiters);
    if (auto why = s.store->read_only_reason(); !why.empty()) {
        s.devices->report_storage_failure("opening the database for writing", {why});
    }
    if (auto loaded = s.devices->load(); !loaded) {
        return {0, 0,
                fmt::format("cannot read the database in '{}': {}", s.config.data_dir,
                            loaded.error.message)};
    }

    std::vector<std::string> tokens = s.config.admin_tokens;
    if (tokens.empty()) {
        auto file = load_or_create_token(s.config.data_dir);
        if (!file) {
            return {0, 0, fmt::format("admin token: {}", file.error)};
        }
        if (file.created) {
            // Shown once, at creation; afterwards it is only in the file (mode 0600).
            s.log.event("admin_token",
                        fmt::format("Generated the admin API token (stored in {}, shown only "
                                    "now): {}",
                                    file.path.string(), file.token));
        }
        tokens.push_back(std::move(file.token));
    }
    s.admin = std::make_unique<admin_api>(s.config, *s.devices, *s.store, s.reader, s.stats,
                                          s.waiters, s.log, std::move(tokens));
    // The tylink time service answers in a device's zone: an ADMS device's (by SN or alias),
    // else its [devices.<id>] time_zone, else the server's.
    s.times = std::make_unique<time_service>(
        [&s](std::string_view id) -> std::string {
            if (auto device = s.devices->find_device(id)) {
                return device->zone_name;
            }
            if (auto it = s.config.devices.find(std::string{id});
                it != s.config.devices.end() && !it->second.time_zone.empty()) {
                return it->second.time_zone;
            }
            return std::string{s.zone.name()};
        },
        s.stats, network_list::parse(s.config.device_networks).value);

    if (auto error = s.bind(s.acceptor, s.config.listen); !error.empty()) {
        return {0, 0, error};
    }
    if (!s.config.admin_listen.empty()) {
        if (auto error = s.bind(s.admin_acceptor, s.config.admin_listen); !error.empty()) {
            return {0, 0, error};
        }
    }
    if (!s.config.tls_listen.empty() || s.config.admin_tls) {
        if (auto error = s.load_tls(); !error.empty()) {
            return {0, 0, error};
        }
    }
    if (!s.config.tls_listen.empty()) {
        if (auto error = s.bind(s.tls_acceptor, s.config.tls_listen); !error.empty()) {
            return {0, 0, error};
        }
    }
    if (!s.config.ntp_listen.empty()) {
        s.ntp = std::make_unique<ntp_responder>(
            s.io, s.log, s.stats, ntp_strata{s.config.ntp_stratum, s.config.ntp_local_stratum});
        if (auto error = s.ntp->bind(s.config.ntp_listen); !error.empty()) {
            s.ntp.reset();
            return {0, 0, error};
        }
    }
    if (!s.config.mqtt_url.empty()) {
        mqtt_options options;
        options.url = s.config.mqtt_url;
        options.username = s.config.mqtt_username;
        options.password = s.config.mqtt_password;
        options.ca_file = s.config.mqtt_ca_file;
        options.client_id = s.config.mqtt_client_id;
        s.mqtt = std::make_unique<mqtt_time_service>(std::move(options), *s.times, s.log);
        if (auto error = s.mqtt->start(); !error.empty()) {
            return {0, 0, error};
        }
    }
    auto bound = s.acceptor.local_endpoint();
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    s.log.event("start",
                fmt::format("admsd {} listening on {}:{}, time zone {} (UTC{} now), data in {}",
                            version, bound.address().to_string(), bound.port(), s.zone.name(),
                            protocol::format_offset_iso(s.zone.utc_offset(now)), s.config.data_dir),
                {{"version", version},
                 {"address", bound.address().to_string()},
                 {"port", std::to_string(bound.port())},
                 {"zone", std::string{s.zone.name()}}});

    bool separate = s.admin_acceptor.is_open();
    if (separate) {
        auto admin_bound = s.admin_acceptor.local_endpoint();
        s.log.event("start", fmt::format("admin API listening on {}:{}",
                                         admin_bound.address().to_string(), admin_bound.port()));
        net::co_spawn(s.admin_acceptor.get_executor(),
                      s.accept_loop(s.admin_acceptor, listener_role::admin, s.config.admin_tls),
                      net::detached);
    }
    net::co_spawn(
        s.acceptor.get_executor(),
        s.accept_loop(s.acceptor, separate ? listener_role::devices : listener_role::both, false),
        net::detached);
    if (s.tls_acceptor.is_open()) {
        auto tls_bound = s.tls_acceptor.local_endpoint();
        s.log.event("start",
                    fmt::format("TLS listening on {}:{}{}", tls_bound.address().to_string(),
                                tls_bound.port(), separate ? " (devices)" : ""));
        net::co_spawn(s.tls_acceptor.get_executor(),
                      s.accept_loop(s.tls_acceptor,
                                    separate ? listener_role::devices : listener_role::both, true),
                      net::detached);
    }
    if (s.ntp) {
        s.ntp->start();
    }
    net::co_spawn(s.io, s.probe_loop(), net::detached);
    for (unsigned i = 0; i < s.config.threads; ++i) {
        s.threads.emplace_back([&s] { s.io.run(); });
    }
    s.started = true;
    return {bound.port(),
            separate ? s.admin_acceptor.local_endpoint().port() : static_cast<unsigned short>(0),
            {},
            s.tls_acceptor.is_open() ? s.tls_acceptor.local_endpoint().port()
                                     : static_cast<unsigned short>(0),
            s.ntp ? s.ntp->port() : static_cast<unsigned short>(0)};
}

void app::stop()
{
    auto& s = *impl_;
    if (!s.started) {
        return;
    }
    s.started = false;
    s.stopping = true;
    if (s.mqtt) {
        s.mqtt->stop(); // no MQTT answer once the registry it reads starts to close
    }
    net::post(s.acceptor.get_executor(), [&s] {
        boost::system::error_code ignored;
        s.acceptor.close(ignored);
        s.admin_acceptor.close(ignored);
        s.tls_acceptor.close(ignored);
    });
    if (s.ntp) {
        s.ntp->close();
    }
    // Requests waiting for a device's confirmation answer 503 now instead of holding the drain.
    if (s.admin) {
        s.admin->stop();
    }
    // Let requests already read finish their commit and reply, within a bound.
    auto deadline = std::chrono::steady_clock::now() + drain_timeout;
    while (s.busy > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    s.io.stop();
    for (auto& t : s.threads) {
        t.join();
    }
    s.threads.clear();
    // The device rows the last second changed (stamps, last contact), before the writer stops.
    if (s.devices) {
        if (auto flushed = s.devices->flush_devices_now(); !flushed) {
            s.log.event("stop", fmt::format("Saving the devices at stop failed: {}",
                                            flushed.error.message));
        }
    }
    s.writer->stop();
    s.reader.join();
    s.store.reset();
    s.log.event("stop", "admsd stopped");
}

} // namespace adms::server
