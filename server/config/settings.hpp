#pragma once

#include "server/config/export_settings.hpp"
#include "server/config/setting_values.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace adms::server {

// Per-device settings from the config file's [devices.<SN>] tables.
struct device_settings {
    std::string alias;     // e.g. "principal": the admin API accepts it instead of the SN
    std::string time_zone; // IANA name; empty = the server's zone
    std::optional<time_dialect> dialect;
    std::optional<std::chrono::minutes> sync_at; // local time of day of the daily sync
    // An extra periodic sync; zero minutes ("off") turns off the global one for this device.
    std::optional<std::chrono::minutes> sync_interval;
    // The communication key the device sends as pushcommkey; empty = the global comm_key.
    std::string comm_key;
};

// A webhook endpoint from the config file's [webhooks.<name>] tables (checked further when the
// server applies it at start: the URL against webhook_allow_networks, the secret's form).
struct webhook_config {
    std::string url;
    std::string description;
    std::string secret;      // "whsec_…"; empty with secret_file empty: one is generated once
    std::string secret_file; // a file holding the secret (read at start)
    std::vector<std::string> event_types; // empty: every type
    std::vector<std::string> devices;     // serial numbers or aliases; empty: every device
    std::vector<std::pair<std::string, std::string>> headers; // extra request headers
    std::chrono::seconds timeout{15};
    std::string ca_file; // a CA bundle for an HTTPS receiver with a private CA
};

// Every setting of admsd. Flags beat environment variables, which beat the config file, which
// beats these defaults.
struct settings {
    std::string listen = "0.0.0.0:8080";
    std::string admin_listen; // a separate address:port for the admin API; empty = `listen`
    // TLS: a listener serving what `listen` serves, over TLS (empty = none); the separate admin
    // listener speaks TLS when admin_tls is set. Both use the PEM files tls_cert and tls_key.
    std::string tls_listen;
    bool admin_tls = false;
    std::string tls_cert;
    std::string tls_key;
    // SNTP server (RFC 4330) relaying the host clock: address:port (empty = off). Answers at
    // ntp_stratum while the kernel says the host clock is synchronised; otherwise leap 3 /
    // stratum 16, unless ntp_local_stratum (1..15, 0 = off) serves it anyway, as chrony's
    // `local stratum`.
    std::string ntp_listen;
    unsigned ntp_stratum = 4;
    unsigned ntp_local_stratum = 0;
    // Bearer tokens the admin API accepts; empty = the one in <data_dir>/admin_token (made at
    // first start).
    std::vector<std::string> admin_tokens;
    bool metrics_require_token = true; // /metrics behind the token (false: open to scrapers)
    std::string data_dir = "./data";
    std::string time_zone; // resolved at load: flag, env, file, TZ, /etc/localtime, else UTC
    unsigned threads = 0;  // 0 = one per core
    std::string log_format = "django"; // django | json
    bool approval_required = false;    // admission: open (default) or approval
    // Source networks allowed to use /iclock/ (comma-separated CIDR list); empty = any.
    std::string device_networks;
    // Handshakes and uploads a second per serial number / per source address (0 = no limit).
    unsigned device_rate_limit = 20;
    unsigned address_rate_limit = 0;
    // The key devices must send as pushcommkey when they have none of their own; empty = none.
    std::string comm_key;
    // The tylink time service over MQTT: the broker (mqtt:// or mqtts:// URL; empty = off), its
    // credentials (they override the URL's userinfo), the CA file for mqtts:// (empty = the
    // system's CAs) and the client id (empty = "admsd-<hostname>").
    std::string mqtt_url;
    std::string mqtt_username;
    std::string mqtt_password;
    std::string mqtt_ca_file;
    std::string mqtt_client_id;
    std::size_t max_body_bytes = 8 * 1024 * 1024;
    std::chrono::seconds read_timeout{30};
    int poll_delay = 10;  // Delay= in the handshake
    int error_delay = 30; // ErrorDelay= in the handshake
    time_dialect dialect = time_dialect::att;
    std::chrono::minutes sync_at{3 * 60};              // daily sync, local time of day
    std::optional<std::chrono::minutes> sync_interval; // optional extra sync every N minutes
    std::chrono::seconds command_resend_after{60};
    int command_max_attempts = 3;
    // The drift watch: warn (and count) when a device's estimated clock offset exceeds this;
    // zero turns the watch off. With drift_auto_sync the device also gets a time sync queued.
    std::chrono::seconds drift_threshold{60};
    bool drift_auto_sync = false;
    std::map<std::string, device_settings> devices; // by SN
    // Webhooks (docs/webhooks.md). Networks a webhook may reach although they are not public
    // (comma-separated CIDR): a config file / environment / flag setting only, never the API.
    std::string webhook_allow_networks;
    std::chrono::seconds webhook_retention{30 * 24 * 3600}; // delivered rows kept this long
    unsigned webhook_max_in_flight = 4;                     // requests at once per endpoint
    // While an endpoint is unavailable: the probe's waits (the last repeats), each +-20 %.
    std::vector<std::chrono::seconds> webhook_retry_schedule{
        std::chrono::seconds{5}, std::chrono::seconds{30}, std::chrono::seconds{60},
        std::chrono::seconds{120}, std::chrono::seconds{300}};
    // An event rejected with a 4xx is retried after these waits, then parked as failed.
    std::vector<std::chrono::seconds> webhook_reject_schedule{std::chrono::seconds{5},
                                                              std::chrono::seconds{300}};
    // An endpoint unavailable this long is disabled (its events kept); zero: never.
    std::chrono::seconds webhook_disable_after{5 * 24 * 3600};
    // device.offline: no request for this many poll delays.
    unsigned device_offline_polls = 6;
    std::map<std::string, webhook_config> webhooks; // by name
    export_table exports; // [exports.<name>]: scheduled payroll exports (config file only)
};

// The result of reading the settings: either settings, or a one-line error naming the setting
// and the value, or a request to print help/version.
struct settings_load {
    std::optional<settings> value;
    std::string error;
    bool show_help = false;
    bool show_version = false;
};

// Reads flags (`--listen ADDR` or `--listen=ADDR`), environment (`ADMS_LISTEN`, …, through
// `getenv`) and the TOML file named by `--config`/`ADMS_CONFIG`. Validates each value (the time
// zone against the zone database) and reports the first bad one.
settings_load load_settings(const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& environment);

// The `--help` text, listing every setting with its flag, variable and default.
std::string settings_help();

} // namespace adms::server
