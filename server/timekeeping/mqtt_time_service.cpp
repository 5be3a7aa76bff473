#include "server/timekeeping/mqtt_time_service.hpp"

#include "protocol/tylink_time.hpp"
#include "server/observability/log_format.hpp"
#include "server/observability/logger.hpp"
#include "server/security/access_control.hpp"
#include "server/timekeeping/time_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mosquitto.h>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace adms::server {
namespace {

// libmosquitto's global state, set up once per process and never torn down: other clients in
// the process (tests) may still use it.
void init_library()
{
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string default_client_id()
{
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
        return "admsd";
    }
    return fmt::format("admsd-{}", host);
}

// Why a libmosquitto call failed; errno for MOSQ_ERR_ERRNO (read at once, before another call).
std::string describe(int rc, int saved_errno)
{
    std::string text = rc == MOSQ_ERR_ERRNO ? std::strerror(saved_errno) : mosquitto_strerror(rc);
    if (!text.empty() && text.back() == '.') {
        text.pop_back(); // "The connection was lost." reads badly before "; reconnecting"
    }
    return text;
}

} // namespace

struct mqtt_time_service::impl {
    impl(mqtt_options o, const time_service& s, logger& l)
        : options{std::move(o)}, service{s}, log{l}
    {
    }

    mqtt_options options;
    const time_service& service;
    logger& log;
    mqtt_endpoint endpoint;
    std::string client_id;
    mosquitto* client = nullptr;
    std::thread thread;
    std::atomic<bool> stopping{false};
    std::mutex mutex; // guards the backoff wait
    std::condition_variable wake;
    // Touched only on the service's thread (callbacks run there too).
    bool subscribed = false;    // connected and subscribed in this round
    bool outage_logged = false; // the current outage has its log line
    log_throttle refusals;      // 1001 answers and odd topics: once a minute per key

    std::string where() const { return fmt::format("{}:{}", endpoint.host, endpoint.port); }
    void run();
    void connection_ended(int rc, int saved_errno, std::chrono::seconds retry_in);
    void answer(const mosquitto_message& message, std::chrono::system_clock::time_point received);

    static void on_connect(mosquitto* client, void* self, int rc);
    static void on_subscribe(mosquitto* client, void* self, int mid, int count, const int* granted);
    static void on_message(mosquitto* client, void* self, const mosquitto_message* message);
};

void mqtt_time_service::impl::on_connect(mosquitto* client, void* self, int rc)
{
    auto& s = *static_cast<impl*>(self);
    if (rc != 0) {
        if (!s.outage_logged) {
            s.log.event("mqtt", fmt::format("MQTT broker {} refused the connection: {}; retrying "
                                            "with backoff",
                                            s.where(), mosquitto_connack_string(rc)));
            s.outage_logged = true;
        }
        return;
    }
    // A clean session forgets subscriptions: subscribe on every connect. QoS 0: a request
    // delivered again later would get a wrong receive time.
    int subscribe_rc = mosquitto_subscribe(client, nullptr,
                                           std::string{protocol::tylink_request_filter}.c_str(), 0);
    if (subscribe_rc != MOSQ_ERR_SUCCESS) {
        s.log.event("mqtt",
                    fmt::format("MQTT subscribe to {} failed: {}", protocol::tylink_request_filter,
                                mosquitto_strerror(subscribe_rc)));
    }
}

void mqtt_time_service::impl::on_subscribe(mosquitto*, void* self, int, int count,
                                           const int* granted)
{
    auto& s = *static_cast<impl*>(self);
    if (count < 1 || granted[0] > 2) {
        s.log.event("mqtt", fmt::format("MQTT broker {} refused the subscription to {}", s.where(),
                                        protocol::tylink_request_filter));
        return;
    }
    s.subscribed = true;
    s.outage_logged = false;
    s.log.event("mqtt",
                fmt::format("MQTT connected to {}{} as {}, subscribed to {}", s.where(),
                            s.endpoint.tls ? " (TLS)" : "", escape_for_log(s.client_id),
                            protocol::tylink_request_filter),
                {{"broker", s.where()}, {"event", "connected"}});
}

void mqtt_time_service::impl::on_message(mosquitto*, void* self, const mosquitto_message* message)
{
    // t2: the first thing done with a request.
    auto received = std::chrono::system_clock::now();
    auto& s = *static_cast<impl*>(self);
    // Callbacks run inside C code: nothing may escape from here.
    try {
        s.answer(*message, received);
    } catch (const std::exception& e) {
        s.log.event("error", fmt::format("MQTT time request on {} failed: {}",
                                         escape_for_log(message->topic), e.what()));
    }
}

void mqtt_time_service::impl::answer(const mosquitto_message& message,
                                     std::chrono::system_clock::time_point received)
{
    std::string_view topic = message.topic != nullptr ? message.topic : "";
    if (message.retain) {
        // A retained request is an old one: its receive time would be wrong. Never answered.
        if (refusals.allow("retained", std::chrono::steady_clock::now())) {
            log.event("mqtt", fmt::format("MQTT ignored a retained time request on {} (logged "
                                          "once a minute)",
                                          escape_for_log(topic)));
        }
        return;
    }
    auto device = protocol::tylink_request_topic_device(topic);
    if (!device || !protocol::valid_tylink_device_id(*device)) {
        // No answer: its response topic would carry the bad id.
        if (refusals.allow("topic", std::chrono::steady_clock::now())) {
            log.event("mqtt", fmt::format("MQTT ignored a time request on {}: not a valid device "
                                          "id (logged once a minute)",
                                          escape_for_log(topic)));
        }
        return;
    }
    std::string_view payload{static_cast<const char*>(message.payload),
                             static_cast<std::size_t>(std::max(message.payloadlen, 0))};
    // answer() reads the send time (t3) last; publishing follows at once.
    auto answered = service.answer(*device, payload, received, time_transport::mqtt);
    auto response_topic = protocol::tylink_response_topic(*device);
    int rc =
        mosquitto_publish(client, nullptr, response_topic.c_str(),
                          static_cast<int>(answered.body.size()), answered.body.data(), 0, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        log.event("error", fmt::format("MQTT publish to {} failed: {}", response_topic,
                                       mosquitto_strerror(rc)));
    }
    if (answered.code != 0 &&
        refusals.allow(std::string{*device}, std::chrono::steady_clock::now())) {
        log.event("mqtt",
                  fmt::format("MQTT time request from device {} answered 1001: {} (logged once "
                              "a minute per device)",
                              *device, escape_for_log(answered.error)),
                  {{"device", std::string{*device}}});
    }
}

void mqtt_time_service::impl::connection_ended(int rc, int saved_errno,
                                               std::chrono::seconds retry_in)
{
    if (subscribed) {
        log.event("mqtt",
                  fmt::format("MQTT connection to {} lost: {}; reconnecting in {} s, then "
                              "backing off to at most {} s",
                              where(), describe(rc, saved_errno), retry_in.count(),
                              options.max_backoff.count()),
                  {{"broker", where()}, {"event", "disconnected"}});
        outage_logged = true;
    } else if (!outage_logged) {
        log.event("mqtt",
                  fmt::format("MQTT cannot connect to {}: {}; retrying in {} s, then backing off "
                              "to at most {} s",
                              where(), describe(rc, saved_errno), retry_in.count(),
                              options.max_backoff.count()),
                  {{"broker", where()}, {"event", "unreachable"}});
        outage_logged = true;
    }
    subscribed = false;
}

void mqtt_time_service::impl::run()
{
    auto delay = std::chrono::seconds{1};
    while (!stopping) {
        // Non-blocking connect (name resolution still blocks): the loop below completes it.
        int rc = mosquitto_connect_async(client, endpoint.host.c_str(), endpoint.port,
                                         static_cast<int>(options.keepalive.count()));
        int saved_errno = errno;
        bool was_subscribed = false;
        if (rc == MOSQ_ERR_SUCCESS) {
            while (!stopping) {
                rc = mosquitto_loop(client, 500, 1);
                saved_errno = errno;
                was_subscribed = was_subscribed || subscribed;
                if (rc != MOSQ_ERR_SUCCESS) {
                    break;
                }
            }
        }
        if (stopping) {
            break;
        }
        // After a working connection the first retry comes soon; failures double the wait.
        if (was_subscribed) {
            delay = std::chrono::seconds{1};
        }
        connection_ended(rc, saved_errno, delay);
        std::unique_lock lock{mutex};
        wake.wait_for(lock, delay, [this] { return stopping.load(); });
        delay = std::min(delay * 2, options.max_backoff);
    }
}

mqtt_time_service::mqtt_time_service(mqtt_options options, const time_service& service, logger& log)
    : impl_{std::make_unique<impl>(std::move(options), service, log)}
{
}

mqtt_time_service::~mqtt_time_service()
{
    stop();
    if (impl_->client != nullptr) {
        mosquitto_destroy(impl_->client);
    }
}

std::string mqtt_time_service::start()
{
    auto& s = *impl_;
    if (s.client != nullptr) {
        return {};
    }
    auto parsed = parse_mqtt_url(s.options.url);
    if (!parsed.value) {
        return fmt::format("invalid mqtt_url: {}", parsed.error);
    }
    s.endpoint = *parsed.value;
    if (!s.options.ca_file.empty()) {
        if (!s.endpoint.tls) {
            return "mqtt_ca_file needs an mqtts:// mqtt_url";
        }
        if (!std::ifstream{s.options.ca_file}) {
            return fmt::format("invalid mqtt_ca_file '{}': cannot read it",
                               escape_for_log(s.options.ca_file));
        }
    }
    s.client_id = s.options.client_id.empty() ? default_client_id() : s.options.client_id;
    init_library();
    s.client = mosquitto_new(s.client_id.c_str(), true, &s);
    if (s.client == nullptr) {
        return fmt::format("cannot create the MQTT client: {}", std::strerror(errno));
    }
    mosquitto_threaded_set(s.client, true);
    const auto& user = s.options.username.empty() ? s.endpoint.username : s.options.username;
    const auto& password = s.options.username.empty() ? s.endpoint.password : s.options.password;
    if (!user.empty()) {
        mosquitto_username_pw_set(s.client, user.c_str(),
                                  password.empty() ? nullptr : password.c_str());
    }
    if (s.endpoint.tls) {
        int rc = MOSQ_ERR_SUCCESS;
        if (s.options.ca_file.empty()) {
            rc = mosquitto_int_option(s.client, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        } else {
            rc = mosquitto_tls_set(s.client, s.options.ca_file.c_str(), nullptr, nullptr, nullptr,
                                   nullptr);
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            return fmt::format("invalid mqtt_ca_file '{}': {}", escape_for_log(s.options.ca_file),
                               mosquitto_strerror(rc));
        }
    }
    mosquitto_connect_callback_set(s.client, &impl::on_connect);
    mosquitto_subscribe_callback_set(s.client, &impl::on_subscribe);
    mosquitto_message_callback_set(s.client, &impl::on_message);
    s.log.event("mqtt",
                fmt::format("MQTT time service: connecting to {}{} as {}", s.where(),
                            s.endpoint.tls ? " (TLS)" : "", escape_for_log(s.client_id)),
                {{"broker", s.where()}, {"event", "starting"}});
    s.thread = std::thread{[&s] { s.run(); }};
    return {};
}

void mqtt_time_service::stop()
{
    auto& s = *impl_;
    if (!s.thread.joinable()) {
        return;
    }
    {
        std::lock_guard lock{s.mutex};
        s.stopping = true;
    }
    s.wake.notify_all();
    // Sends DISCONNECT when connected and wakes the loop's select().
    mosquitto_disconnect(s.client);
    s.thread.join();
    s.log.event("mqtt", fmt::format("MQTT time service stopped ({})", s.where()),
                {{"broker", s.where()}, {"event", "stopped"}});
}

} // namespace adms::server
