// libFuzzer target: raw bytes on one connection, read as server/http/session.cpp reads them
// (Beast's request parser with the same header limit and a 1 MiB body limit), dispatched by the
// real router over the server's route table (server/routes.cpp) to the real objects: SQLite
// storage in a temporary directory, the blocking pools, the metrics. Each response is
// serialised as the session writes it.
//
// State lives across inputs (devices seen, punches stored, commands queued), as on a real
// server; the database is replaced every `inputs_per_database` inputs to keep work per input
// bounded, so a finding may need the inputs before it to reproduce.

#include "protocol/zk_time.hpp"
#include "server/admin/admin_api.hpp"
#include "server/admin/exports_api.hpp"
#include "server/admin/persons_api.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/devices/device_service.hpp"
#include "server/devices/punch_devices.hpp"
#include "server/events/event_stream.hpp"
#include "server/exports/export_service.hpp"
#include "server/net.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/personnel/directory_service.hpp"
#include "server/routes.hpp"
#include "server/security/access_control.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "server/timekeeping/time_service.hpp"
#include "server/webhooks/webhook_registry.hpp"
#include "server/webhooks/webhook_relay.hpp"
#include "server/webhooks/webhook_service.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tz/zone.hpp"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>

namespace {

using namespace adms::server;
using adms::tz::locate_zone;

constexpr std::size_t header_limit_bytes = 16 * 1024; // as server/http/session.cpp
constexpr std::size_t body_limit_bytes = 1024 * 1024;
// Larger inputs only repeat what the limits already cut off.
constexpr std::size_t max_input_bytes = header_limit_bytes + body_limit_bytes + 1024;
// Keep-alive requests read from one input, like a session's loop.
constexpr int max_requests_per_input = 8;
constexpr std::size_t inputs_per_database = 2000;
constexpr const char* admin_token = "fuzz-token-0123456789abcdef"; // in fuzz_http.dict

// A fresh directory for this process's database: $TMPDIR, else /dev/shm (fsync is cheap on
// tmpfs), else the system temp dir. Removed at exit.
std::filesystem::path make_data_dir()
{
    std::filesystem::path base;
    if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
        base = tmp;
    } else if (std::error_code ec; std::filesystem::is_directory("/dev/shm", ec)) {
        base = "/dev/shm";
    } else {
        base = std::filesystem::temp_directory_path();
    }
    std::string pattern = (base / "admsd-fuzz-http-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("fuzz_http: mkdtemp");
        std::abort();
    }
    return pattern;
}

// Webhook deliveries in the fuzzer go nowhere: its inputs create endpoints with any public URL,
// and a fuzz run must never send to the internet. Everything up to the send is the real code.
class refusing_sender final : public webhook_sender {
  public:
    net::awaitable<send_result> send(const webhook_endpoint&, const outbox_event&) override
    {
        send_result r;
        r.outcome = send_outcome::connect_error;
        r.error = "fuzz_http sends nothing";
        co_return r;
    }
};

// The application's objects, as app::start() builds them.
// Thread safety: used by the fuzzer's thread only; the pools run storage calls on their own.
struct server_state {
    server_state()
        : data_dir{make_data_dir()}, zone{*locate_zone("Europe/Berlin").value},
          log_file{std::fopen("/dev/null", "w")}, log{zone, false, log_file}, reader{1}
    {
        config.data_dir = data_dir.string();
        config.time_zone = std::string{zone.name()};
        config.threads = 1;
        config.max_body_bytes = body_limit_bytes;
        config.admin_tokens = {admin_token};
        // Inputs come thousands a second from a few serial numbers: without this almost every
        // upload would be answered by the rate limiter instead of reaching its handler.
        config.device_rate_limit = 0;
        // One device with settings from the config file (an alias, its own zone and dialect).
        config.devices["CKJ9213360080"] = {.alias = "front-door",
                                           .time_zone = "Asia/Kolkata",
                                           .dialect = time_dialect::att_singular,
                                           .sync_at = std::chrono::minutes{90},
                                           .sync_interval = std::chrono::minutes{240},
                                           .comm_key = {}};
        // One payroll export, so POST /exports/{name}/run reaches the file writer.
        config.exports["payroll"] = {.at = std::chrono::minutes{90},
                                     .directory = (data_dir / "exports").string(),
                                     .format = "csv"};
    }

    // Replaces the database and every object that holds its state with fresh ones.
    void reopen()
    {
        routes.reset();
        times.reset();
        exports_handlers.reset();
        exports.reset();
        admin.reset();
        webhooks.reset();
        relay_io.reset(); // its queued handlers point at the relay: dropped first
        relay.reset();
        hook_routes.reset();
        devices.reset();
        writer.reset();
        store.reset();
        std::error_code ignored;
        for (const auto* name : {"admsd.sqlite3", "admsd.sqlite3-wal", "admsd.sqlite3-shm"}) {
            std::filesystem::remove(data_dir / name, ignored);
        }
        stats = std::make_unique<metrics>();
        waiters = std::make_unique<command_waiters>();
        auto opened = sqlite_database::open(data_dir / "admsd.sqlite3");
        FUZZ_CHECK(opened);
        store = std::move(*opened.value);
        writer = std::make_unique<commit_queue>(*store);
        events = std::make_unique<event_stream>();
        devices = std::make_unique<device_service>(config, *store, *writer, log, zone, *stats,
                                                   *waiters, *events);
        hook_routes =
            std::make_unique<webhook_registry>([](std::string_view) { return std::string{}; });
        // The relay gets an io_context of its own that never runs: what the router hands it
        // (refreshes, published events) waits there and is dropped with it, so no delivery, probe
        // or retry timer holds up an input. Delivery has tests of its own.
        relay_io = std::make_unique<net::io_context>();
        relay = std::make_unique<webhook_relay>(*relay_io, *store, reader, *writer, *hook_routes,
                                                sender, log, *stats, relay_settings{});
        webhooks = std::make_unique<webhook_service>(config, *store, *writer, reader, *hook_routes,
                                                     *relay, *events, log);
        webhooks->resolve_names(false);
        FUZZ_CHECK(webhooks->apply_config().empty());
        events->set_routes(hook_routes.get());
        events->subscribe(relay.get());
        FUZZ_CHECK(devices->load());
        admin = std::make_unique<admin_api>(config, *devices, *store, reader, *stats, *waiters, log,
                                            config.admin_tokens, *webhooks, *relay);
        // No device answers while one input runs, so a sync-time that waits for confirmation
        // would sit out its whole timeout (1 to 300 s): stopped, it queues the sync and answers
        // 503 at once.
        admin->stop();
        times = std::make_unique<time_service>(
            [this](std::string_view id) { return devices->zone_name_of(id); }, *stats,
            network_list::parse("").value);
        exports = std::make_unique<export_service>(
            config.exports, zone, *store, *writer, [this] { return make_device_lookup(*devices); },
            log, *stats);
        FUZZ_CHECK(exports->load());
        exports_handlers = std::make_unique<exports_api>(*exports);
        directory = std::make_unique<personnel::directory_service>(*store, reader, *writer, log);
        persons_handlers = std::make_unique<persons_api>(*directory);
        routes = std::make_unique<router>(
            server_routes(config, *devices, *times, *admin, *exports_handlers, *persons_handlers),
            [this](const http_request& request) { return admin->authenticate(request); });
    }

    std::filesystem::path data_dir;
    settings config;
    adms::tz::zone zone;
    std::FILE* log_file;
    logger log;
    blocking_pool reader;
    std::unique_ptr<metrics> stats;
    std::unique_ptr<command_waiters> waiters;
    std::unique_ptr<sqlite_database> store;
    std::unique_ptr<commit_queue> writer;
    std::unique_ptr<event_stream> events;
    std::unique_ptr<device_service> devices;
    refusing_sender sender;
    std::unique_ptr<webhook_registry> hook_routes;
    std::unique_ptr<net::io_context> relay_io;
    std::unique_ptr<webhook_relay> relay;
    std::unique_ptr<webhook_service> webhooks;
    std::unique_ptr<admin_api> admin;
    std::unique_ptr<export_service> exports;
    std::unique_ptr<exports_api> exports_handlers;
    std::unique_ptr<personnel::directory_service> directory;
    std::unique_ptr<persons_api> persons_handlers;
    std::unique_ptr<time_service> times;
    std::unique_ptr<router> routes;
    net::io_context io;
    std::size_t inputs = 0;
    std::set<std::string> exceptions_seen;
    bool echo = std::getenv("ADMS_FUZZ_HTTP_ECHO") != nullptr;
};

// Created on first use and never destroyed: its pool threads must outlive every input, and
// the process ends with exit(). Its data directory is removed at exit.
server_state& state()
{
    static server_state* s = [] {
        auto* created = new server_state;
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(state().data_dir, ignored);
        });
        return created;
    }();
    return *s;
}

// True when a header name or value could not split the response (no CR, LF or NUL).
bool is_header_safe(std::string_view text)
{
    return text.find_first_of(std::string_view{"\r\n\0", 3}) == std::string_view::npos;
}

// Serves one parsed request as session() does: route, catch at the router, then serialise the
// response (a streamed one piece by piece). Returns the bytes the session would write.
net::awaitable<std::string> serve(server_state& s, http::request<http::string_body>& req)
{
    http_request request;
    request.method = std::string{req.method_string()};
    request.target = std::string{req.target()};
    request.version = req.version();
    request.body = std::move(req.body());
    request.remote_address = "127.0.0.1";
    request.authorization = std::string{req[http::field::authorization]};
    request.received_at = std::chrono::system_clock::now();

    http_response response;
    try {
        // A listener serving devices and the admin API alike.
        response = (co_await s.routes->dispatch(request, listener_role::both)).response;
    } catch (const std::exception& e) {
        // The router's boundary (500) is by design; say once per kind what reached it.
        if (s.exceptions_seen.insert(e.what()).second) {
            std::fprintf(stderr, "fuzz_http: exception at the router: %s\n", e.what());
        }
        response = text_response(500, "internal server error\n");
    }

    FUZZ_CHECK(response.status >= 100 && response.status <= 599);
    FUZZ_CHECK(!response.content_type.empty() && is_header_safe(response.content_type));
    for (const auto& [name, value] : response.headers) {
        FUZZ_CHECK(!name.empty() && is_header_safe(name) && is_header_safe(value));
    }
    std::ostringstream out;
    if (!response.stream) {
        http::response<http::string_body> res{static_cast<http::status>(response.status),
                                              req.version()};
        res.set(http::field::server, "admsd");
        res.set(http::field::content_type, response.content_type);
        for (const auto& [name, value] : response.headers) {
            res.set(name, value);
        }
        res.keep_alive(req.keep_alive());
        res.body() = std::move(response.body);
        res.prepare_payload();
        res.set(http::field::date,
                adms::protocol::format_http_date(
                    std::chrono::round<std::chrono::seconds>(std::chrono::system_clock::now())));
        out << res;
    } else {
        http::response<http::empty_body> res{static_cast<http::status>(response.status),
                                             req.version()};
        res.set(http::field::content_type, response.content_type);
        res.chunked(req.version() >= 11);
        out << res.base();
        for (;;) {
            auto piece = co_await response.stream();
            if (!piece || piece->empty()) {
                break;
            }
            out << *piece;
        }
    }
    co_return out.str();
}

// Runs `serve` on the io_context until it and everything it started have finished.
std::string run(server_state& s, http::request<http::string_body>& req)
{
    std::string reply;
    std::exception_ptr failure;
    bool done = false;
    net::co_spawn(s.io, serve(s, req), [&](std::exception_ptr e, std::string r) {
        failure = e;
        reply = std::move(r);
        done = true;
    });
    s.io.restart();
    s.io.run();
    FUZZ_CHECK(done);
    if (failure) {
        // Past the router nothing may throw: the session would drop the connection.
        std::rethrow_exception(failure);
    }
    return reply;
}

// Feeds `buffer` to `parser` as http::async_read does when the peer then closes: returns the
// error, or none when a whole request was read.
beast::error_code read_request(beast::flat_buffer& buffer,
                               http::request_parser<http::string_body>& parser)
{
    beast::error_code ec;
    while (!parser.is_done()) {
        if (buffer.size() == 0) {
            if (!parser.got_some()) {
                return http::error::end_of_stream;
            }
            parser.put_eof(ec);
            return ec ? ec : beast::error_code{http::error::partial_message};
        }
        auto used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == http::error::need_more || (!ec && used == 0)) {
            // Everything the peer sent is in the buffer: nothing more is coming.
            ec = {};
            if (!parser.got_some()) {
                return http::error::end_of_stream;
            }
            parser.put_eof(ec);
            return ec ? ec : beast::error_code{http::error::partial_message};
        }
        if (ec) {
            return ec;
        }
    }
    return {};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size > max_input_bytes) {
        return 0;
    }
    auto& s = state();
    if (s.inputs++ % inputs_per_database == 0) {
        s.reopen();
    }
    beast::flat_buffer buffer;
    buffer.commit(net::buffer_copy(buffer.prepare(size), net::buffer(data, size)));

    for (int i = 0; i < max_requests_per_input; ++i) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit_bytes);
        parser.body_limit(s.config.max_body_bytes);
        parser.eager(true);
        auto ec = read_request(buffer, parser);
        if (ec) {
            // As session(): a malformed or oversized request gets one status, built from what
            // the parser has; a closed connection gets nothing.
            if (ec != http::error::end_of_stream && ec != http::error::partial_message &&
                parser.is_header_done()) {
                const auto& partial = parser.get();
                FUZZ_CHECK(is_header_safe(partial.method_string()));
                FUZZ_CHECK(is_header_safe(partial.target()));
            }
            break;
        }
        auto& req = parser.get();
        auto reply = run(s, req);
        FUZZ_CHECK(reply.starts_with("HTTP/"));
        if (s.echo) {
            // ADMS_FUZZ_HTTP_ECHO=1: show each reply, to check what seeds reach.
            std::fprintf(stderr, "%s %s -> %.*s\n", std::string{req.method_string()}.c_str(),
                         std::string{req.target()}.c_str(),
                         static_cast<int>(std::min<std::size_t>(reply.size(), 600)), reply.data());
        }
        if (!req.keep_alive()) {
            break;
        }
    }
    return 0;
}
