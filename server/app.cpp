#include "server/app.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/zk_time.hpp"
#include "server/admin/admin_api.hpp"
#include "server/admin/exports_api.hpp"
#include "server/admin/persons_api.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/devices/device_service.hpp"
#include "server/devices/punch_devices.hpp"
#include "server/events/event_stream.hpp"
#include "server/exports/export_service.hpp"
#include "server/http/listener.hpp"
#include "server/http/session.hpp"
#include "server/http/tls.hpp"
#include "server/net.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/personnel/directory_service.hpp"
#include "server/routes.hpp"
#include "server/security/access_control.hpp"
#include "server/security/admin_token.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "server/timekeeping/mqtt_time_service.hpp"
#include "server/timekeeping/ntp_responder.hpp"
#include "server/timekeeping/time_service.hpp"
#include "server/version.hpp"
#include "server/webhooks/http_sender.hpp"
#include "server/webhooks/webhook_registry.hpp"
#include "server/webhooks/webhook_relay.hpp"
#include "server/webhooks/webhook_service.hpp"
#include "tz/zone.hpp"

#include <boost/asio/ssl/context.hpp>
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace adms::server {
namespace {

constexpr auto drain_timeout = std::chrono::seconds{10};

// The configured zone; load_settings() validated it, and start() reports a bad one.
tz::zone zone_or_utc(const std::string& name)
{
    auto found = tz::locate_zone(name);
    return found ? *found.value : *tz::locate_zone("UTC").value;
}

app::start_result fail(std::string error)
{
    app::start_result result;
    result.error = std::move(error);
    return result;
}

} // namespace

struct app::impl {
    impl(settings s, std::FILE* log_output)
        : config{std::move(s)}, zone{zone_or_utc(config.time_zone)}, log{zone,
                                                                         config.log_format ==
                                                                             "json",
                                                                         log_output},
          io{static_cast<int>(config.threads)}, reader{2}
    {
    }

    settings config;
    tz::zone zone;
    logger log;
    net::io_context io;
    std::unique_ptr<net::ssl::context> tls_context; // with tls_listen or admin_tls
    blocking_pool reader; // admin API reads (a read connection of their own)
    metrics stats;
    command_waiters waiters;
    std::unique_ptr<sqlite_database> store;
    std::unique_ptr<commit_queue> writer; // declared after `store`: stops before it closes
    event_stream events;                  // declared before what publishes to it or listens
    network_list webhooks_allow;          // webhook_allow_networks, parsed
    std::unique_ptr<device_service> devices;
    std::unique_ptr<webhook_registry> hook_routes;
    std::unique_ptr<http_webhook_sender> hook_sender;
    std::unique_ptr<webhook_relay> relay;
    std::unique_ptr<webhook_service> webhooks;
    std::unique_ptr<admin_api> admin;
    std::unique_ptr<export_service> exports;
    std::unique_ptr<exports_api> exports_handlers;
    std::unique_ptr<personnel::directory_service> directory;
    std::unique_ptr<persons_api> persons_handlers;
    std::unique_ptr<time_service> times;
    std::unique_ptr<router> routes;
    std::unique_ptr<http_sessions> sessions;
    std::unique_ptr<listener> device_listener;
    std::unique_ptr<listener> admin_listener; // with a separate admin_listen
    std::unique_ptr<listener> tls_listener;   // with tls_listen
    std::unique_ptr<mqtt_time_service> mqtt;  // with mqtt_url; declared after what it uses
    std::unique_ptr<ntp_responder> ntp;       // with ntp_listen
    std::vector<std::thread> threads;
    std::atomic<bool> stopping{false};
    bool started = false;

    std::string check_settings() const;
    std::string open_storage();
    std::string build_services();
    std::string build_webhooks();
    std::string build_exports();
    std::string bind_listeners();
    std::string start_time_services();
    start_result ports() const;
    void log_start();
    net::awaitable<void> probe_loop();
};

app::app(settings config, std::FILE* log_output)
    : impl_{std::make_unique<impl>(std::move(config), log_output)}
{
}

app::~app()
{
    stop();
}

// Settings built in code (tests, embedders) skip load_settings(): check what a bad value would
// silently weaken.
std::string app::impl::check_settings() const
{
    if (auto found = tz::locate_zone(config.time_zone); !found) {
        return fmt::format("invalid time zone '{}': {}", config.time_zone, found.error);
    }
    if (auto networks = network_list::parse(config.device_networks); !networks.value) {
        return fmt::format("invalid device_networks: {}", networks.error);
    }
    if (auto error = check_exports(config.exports); !error.empty()) {
        return error;
    }
    if (config.admin_tls && config.admin_listen.empty()) {
        return "admin_tls needs admin_listen: the admin API shares the device listener (use "
               "tls_listen for TLS there)";
    }
    return {};
}

std::string app::impl::open_storage()
{
    std::error_code fs_ec;
    std::filesystem::create_directories(config.data_dir, fs_ec);
    if (fs_ec) {
        return fmt::format("invalid data_dir '{}': {}", config.data_dir, fs_ec.message());
    }
    sqlite_open_options open_options;
    // A read-only data directory (a file system remounted read-only after errors, a volume
    // mounted :ro) still lets devices poll and get their time; uploads get 503 until it is
    // writable again, which the storage notices by itself.
    open_options.read_only_fallback = true;
    auto opened = sqlite_database::open(std::filesystem::path{config.data_dir} / "admsd.sqlite3",
                                        open_options);
    if (!opened) {
        return fmt::format("invalid data_dir '{}': cannot open the database: {}", config.data_dir,
                           opened.error.message);
    }
    store = std::move(*opened.value);
    writer = std::make_unique<commit_queue>(*store);
    return {};
}

std::string app::impl::build_services()
{
    devices = std::make_unique<device_service>(config, *store, *writer, log, zone, stats, waiters,
                                               events);
    if (auto why = store->read_only_reason(); !why.empty()) {
        devices->report_storage_failure("opening the database for writing", {why});
    }
    // The webhook endpoints first: releasing quarantined punches at load announces them.
    if (auto error = build_webhooks(); !error.empty()) {
        return error;
    }
    if (auto loaded = devices->load(); !loaded) {
        return fmt::format("cannot read the database in '{}': {}", config.data_dir,
                           loaded.error.message);
    }

    std::vector<std::string> tokens = config.admin_tokens;
    if (tokens.empty()) {
        auto file = load_or_create_token(config.data_dir);
        if (!file) {
            return fmt::format("admin token: {}", file.error);
        }
        if (file.created) {
            // Shown once, at creation; afterwards it is only in the file (mode 0600).
            log.event("admin_token",
                      fmt::format("Generated the admin API token (stored in {}, shown only "
                                  "now): {}",
                                  file.path.string(), file.token));
        }
        tokens.push_back(std::move(file.token));
    }
    admin = std::make_unique<admin_api>(config, *devices, *store, reader, stats, waiters, log,
                                        std::move(tokens), *webhooks, *relay);
    times = std::make_unique<time_service>(
        [this](std::string_view id) { return devices->zone_name_of(id); }, stats,
        network_list::parse(config.device_networks).value);

    if (auto error = build_exports(); !error.empty()) {
        return error;
    }
    directory = std::make_unique<personnel::directory_service>(*store, reader, *writer, log);
    persons_handlers = std::make_unique<persons_api>(*directory);
    routes = std::make_unique<router>(
        server_routes(config, *devices, *times, *admin, *exports_handlers, *persons_handlers),
        [this](const http_request& request) { return admin->authenticate(request); });
    if (!config.tls_listen.empty() || config.admin_tls) {
        auto made = make_tls_context(config.tls_cert, config.tls_key);
        if (!made.context) {
            return made.error;
        }
        tls_context = std::move(made.context);
    }
    sessions = std::make_unique<http_sessions>(
        *routes, log, stats, session_limits{config.read_timeout, config.max_body_bytes},
        tls_context.get());
    return {};
}

// The webhook endpoints (stored, then the config file's), the relay that delivers the outbox,
// and the event stream's routes to them.
std::string app::impl::build_webhooks()
{
    if (!network_list::parse(config.webhook_allow_networks).value) {
        return "invalid webhook_allow_networks";
    }
    hook_routes = std::make_unique<webhook_registry>([this](std::string_view serial_number) {
        auto device = devices->find_device(serial_number);
        return device && device->record.alias ? *device->record.alias : std::string{};
    });
    relay_settings relaying;
    relaying.max_in_flight = config.webhook_max_in_flight;
    relaying.retry_schedule = config.webhook_retry_schedule;
    relaying.reject_schedule = config.webhook_reject_schedule;
    relaying.disable_after = config.webhook_disable_after;
    relaying.retention = config.webhook_retention;
    webhooks_allow = network_list::parse(config.webhook_allow_networks).value.value();
    hook_sender = std::make_unique<http_webhook_sender>(webhooks_allow);
    relay = std::make_unique<webhook_relay>(io, *store, reader, *writer, *hook_routes, *hook_sender,
                                            log, stats, std::move(relaying));
    webhooks = std::make_unique<webhook_service>(config, *store, *writer, reader, *hook_routes,
                                                 *relay, events, log);
    if (auto error = webhooks->apply_config(); !error.empty()) {
        return error;
    }
    events.set_routes(hook_routes.get());
    events.subscribe(relay.get());
    return {};
}

// The payroll exports: their state read and a crash's temporaries removed before anything runs.
std::string app::impl::build_exports()
{
    // export.completed is staged in the commit that records the run. The relay's periodic
    // rescan (every few seconds) delivers it: the hook runs inside the batch, before the commit
    // a wake-up would have to follow.
    auto announce = [this](write_tx& tx, const export_run& run) -> storage_status {
        if (!events.active()) {
            return std::monostate{};
        }
        boost::json::object data;
        data["export"] = run.name;
        data["date"] = protocol::format_civil_date(run.day);
        data["file"] = run.file;
        data["rows"] = run.rows;
        data["bytes"] = run.bytes;
        data["scheduled"] = run.scheduled;
        std::vector<event> announced{{"export.completed", "", std::move(data)}};
        std::vector<published_event> staged;
        return events.stage(tx, announced, staged);
    };
    exports = std::make_unique<export_service>(
        config.exports, zone, *store, *writer, [this] { return make_device_lookup(*devices); }, log,
        stats, announce);
    if (auto loaded = exports->load(); !loaded) {
        return fmt::format("cannot read the exports' state in '{}': {}", config.data_dir,
                           loaded.error.message);
    }
    exports_handlers = std::make_unique<exports_api>(*exports);
    return {};
}

std::string app::impl::bind_listeners()
{
    device_listener = std::make_unique<listener>(io, *sessions, log);
    if (auto error = device_listener->bind(config.listen); !error.empty()) {
        return error;
    }
    if (!config.admin_listen.empty()) {
        admin_listener = std::make_unique<listener>(io, *sessions, log);
        if (auto error = admin_listener->bind(config.admin_listen); !error.empty()) {
            return error;
        }
    }
    if (!config.tls_listen.empty()) {
        tls_listener = std::make_unique<listener>(io, *sessions, log);
        if (auto error = tls_listener->bind(config.tls_listen); !error.empty()) {
            return error;
        }
    }
    return {};
}

std::string app::impl::start_time_services()
{
    if (!config.ntp_listen.empty()) {
        ntp = std::make_unique<ntp_responder>(
            io, log, stats, ntp_strata{config.ntp_stratum, config.ntp_local_stratum});
        if (auto error = ntp->bind(config.ntp_listen); !error.empty()) {
            ntp.reset();
            return error;
        }
    }
    if (!config.mqtt_url.empty()) {
        mqtt_options options;
        options.url = config.mqtt_url;
        options.username = config.mqtt_username;
        options.password = config.mqtt_password;
        options.ca_file = config.mqtt_ca_file;
        options.client_id = config.mqtt_client_id;
        mqtt = std::make_unique<mqtt_time_service>(std::move(options), *times, log);
        if (auto error = mqtt->start(); !error.empty()) {
            return error;
        }
    }
    return {};
}

app::start_result app::impl::ports() const
{
    start_result result;
    result.port = device_listener->port();
    result.admin_port = admin_listener ? admin_listener->port() : 0;
    result.tls_port = tls_listener ? tls_listener->port() : 0;
    result.ntp_port = ntp ? ntp->port() : 0;
    return result;
}

void app::impl::log_start()
{
    auto bound = device_listener->endpoint();
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    log.event("start",
              fmt::format("admsd {} listening on {}:{}, time zone {} (UTC{} now), data in {}",
                          version, bound.address().to_string(), bound.port(), zone.name(),
                          protocol::format_offset_iso(zone.utc_offset(now)), config.data_dir),
              {{"version", version},
               {"address", bound.address().to_string()},
               {"port", std::to_string(bound.port())},
               {"zone", std::string{zone.name()}}});
    if (admin_listener) {
        auto admin_bound = admin_listener->endpoint();
        log.event("start", fmt::format("admin API listening on {}:{}",
                                       admin_bound.address().to_string(), admin_bound.port()));
    }
    if (tls_listener) {
        auto tls_bound = tls_listener->endpoint();
        log.event("start", fmt::format("TLS listening on {}:{}{}", tls_bound.address().to_string(),
                                       tls_bound.port(), admin_listener ? " (devices)" : ""));
    }
}

// While storage fails, a probe write every second notices recovery (and /healthz turns healthy)
// even when no device uploads; the device rows the last second changed are written too.
net::awaitable<void> app::impl::probe_loop()
{
    net::steady_timer timer{io};
    while (!stopping) {
        timer.expires_after(std::chrono::seconds{1});
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        if (!stopping) {
            co_await devices->probe_storage();
            co_await devices->flush_devices();
            co_await devices->watch_presence();
        }
    }
}

app::start_result app::start()
{
    auto& s = *impl_;
    if (s.started) {
        return s.ports();
    }
    using step = std::string (impl::*)();
    auto check = [](const impl& i) { return i.check_settings(); };
    if (auto error = check(s); !error.empty()) {
        return fail(std::move(error));
    }
    for (step next : {&impl::open_storage, &impl::build_services, &impl::bind_listeners,
                      &impl::start_time_services}) {
        if (auto error = (s.*next)(); !error.empty()) {
            return fail(std::move(error));
        }
    }
    s.log_start();
    bool separate = s.admin_listener != nullptr;
    auto device_role = separate ? listener_role::devices : listener_role::both;
    if (separate) {
        s.admin_listener->start(listener_role::admin, s.config.admin_tls);
    }
    s.device_listener->start(device_role, false);
    if (s.tls_listener) {
        s.tls_listener->start(device_role, true);
    }
    if (s.ntp) {
        s.ntp->start();
    }
    net::co_spawn(s.io, s.probe_loop(), net::detached);
    s.relay->start();
    net::co_spawn(s.io, s.exports->run_schedule(), net::detached);
    for (unsigned i = 0; i < s.config.threads; ++i) {
        s.threads.emplace_back([&s] { s.io.run(); });
    }
    s.started = true;
    return s.ports();
}

void app::stop()
{
    auto& s = *impl_;
    if (!s.started) {
        return;
    }
    s.started = false;
    s.stopping = true;
    s.sessions->stop();
    if (s.mqtt) {
        s.mqtt->stop(); // no MQTT answer once the registry it reads starts to close
    }
    for (auto* l : {s.device_listener.get(), s.admin_listener.get(), s.tls_listener.get()}) {
        if (l != nullptr) {
            l->close();
        }
    }
    if (s.ntp) {
        s.ntp->close();
    }
    // Requests waiting for a device's confirmation answer 503 now instead of holding the drain;
    // a file being exported is abandoned (its temporary removed), its request answered.
    s.admin->stop();
    s.relay->stop(); // no new deliveries; one in flight is sent again at the next start
    s.exports->stop();
    // Let requests already read finish their commit and reply, within a bound.
    auto deadline = std::chrono::steady_clock::now() + drain_timeout;
    while (s.sessions->busy() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    s.io.stop();
    for (auto& t : s.threads) {
        t.join();
    }
    s.threads.clear();
    // The device rows the last second changed (stamps, last contact), before the writer stops.
    if (auto flushed = s.devices->flush_devices_now(); !flushed) {
        s.log.event("stop",
                    fmt::format("Saving the devices at stop failed: {}", flushed.error.message));
    }
    s.writer->stop();
    s.reader.join();
    s.store.reset();
    s.log.event("stop", "admsd stopped");
}

} // namespace adms::server
