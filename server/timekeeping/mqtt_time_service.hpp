#pragma once

#include "server/config/mqtt_url.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

class logger;
class time_service;

// How the MQTT client connects; see settings (mqtt_*).
struct mqtt_options {
    std::string url;
    std::string username; // overrides the URL's userinfo when set
    std::string password;
    std::string ca_file;   // mqtts: the CA certificates (PEM); empty = the system's
    std::string client_id; // empty = "admsd-<hostname>"
    std::chrono::seconds keepalive{30};
    std::chrono::seconds max_backoff{30};
};

// The time service over MQTT: subscribes to tylink/+/ext/time/request (QoS 0, clean session)
// and publishes each answer to tylink/{deviceId}/ext/time/response (QoS 0, not retained).
// Reconnects on its own thread with exponential backoff (1 s, doubling, at most max_backoff)
// for as long as it runs; a broker that is down at start is retried the same way.
// Thread safety: start() and stop() are called from one controlling thread; the client's
// callbacks run on the service's own thread and use only thread-safe collaborators.
class mqtt_time_service {
  public:
    // `service` and `log` must outlive this object.
    mqtt_time_service(mqtt_options options, const time_service& service, logger& log);
    ~mqtt_time_service();
    mqtt_time_service(const mqtt_time_service&) = delete;
    mqtt_time_service& operator=(const mqtt_time_service&) = delete;

    // Checks the options and starts connecting in the background. Returns one line saying what
    // is wrong with them (bad URL, unreadable CA file), or an empty string. An unreachable
    // broker is not an error: it is logged and retried.
    std::string start();

    // Disconnects (sending DISCONNECT when connected) and joins the thread. Idempotent.
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace adms::server
