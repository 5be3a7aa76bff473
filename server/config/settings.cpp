#include "server/config/settings.hpp"

#include "protocol/text.hpp"
#include "server/config/export_tables.hpp"
#include "server/config/mqtt_url.hpp"
#include "server/config/setting_values.hpp"
#include "server/config/webhook_config.hpp"
#include "server/security/access_control.hpp"
#include "tz/zone.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <functional>
#include <thread>
#include <toml++/toml.h>
#include <variant>

namespace adms::server {
namespace {

// An error message, empty for success.
using apply_result = std::string;

// One setting: where it comes from and how a text value is applied.
struct setting_spec {
    const char* key;  // config file key, and the flag without "--" (with '_' as '-')
    const char* env;  // environment variable
    const char* help; // one line
    std::function<apply_result(settings&, const std::string&)> apply;
    bool secret = false; // never echo the value in an error
};

// The value as an error message may show it.
std::string shown(const setting_spec& spec, const std::string& value)
{
    return spec.secret ? std::string{"(hidden)"} : value;
}

std::string flag_of(const setting_spec& spec)
{
    std::string flag = std::string{"--"} + spec.key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    return flag;
}

apply_result bad(const char* key, const std::string& value, std::string_view expected)
{
    return fmt::format("invalid {} '{}': {}", key, value, expected);
}

// Applies an integer within [low, high].
template <class Field>
auto integer_setting(Field settings::*field, long long low, long long high)
{
    return [field, low, high](settings& s, const std::string& value) -> apply_result {
        auto parsed = protocol::text::parse_integer<long long>(value);
        if (!parsed || *parsed < low || *parsed > high) {
            return fmt::format("expected a whole number from {} to {}", low, high);
        }
        s.*field = static_cast<Field>(*parsed);
        return {};
    };
}

// A list of waits (parse_schedule).
auto schedule_setting(std::vector<std::chrono::seconds> settings::*field)
{
    return [field](settings& s, const std::string& value) -> apply_result {
        auto schedule = parse_schedule(value);
        if (!schedule) {
            return "expected 1 to 20 comma-separated durations of at least 1s, e.g. 5s,30s,5m";
        }
        s.*field = *schedule;
        return {};
    };
}

const std::vector<setting_spec>& specs()
{
    static const std::vector<setting_spec> all{
        {"listen", "ADMS_LISTEN", "address:port to serve devices on (port 0 picks a free port)",
         [](settings& s, const std::string& v) -> apply_result {
             if (!split_listen(v)) {
                 return "expected ADDRESS:PORT, e.g. 0.0.0.0:8080";
             }
             s.listen = v;
             return {};
         }},
        {"admin_listen", "ADMS_ADMIN_LISTEN",
         "separate address:port for the admin API (default: the device port serves both)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v.empty()) {
                 s.admin_listen.clear();
                 return {};
             }
             if (!split_listen(v)) {
                 return "expected ADDRESS:PORT, e.g. 127.0.0.1:8081";
             }
             s.admin_listen = v;
             return {};
         }},
        {"tls_listen", "ADMS_TLS_LISTEN",
         "address:port serving the same over TLS (needs tls_cert, tls_key; default: off)",
         [](settings& s, const std::string& v) -> apply_result {
             if (!v.empty() && !split_listen(v)) {
                 return "expected ADDRESS:PORT, e.g. 0.0.0.0:8443";
             }
             s.tls_listen = v;
             return {};
         }},
        {"admin_tls", "ADMS_ADMIN_TLS", "true: the separate admin listener speaks TLS",
         [](settings& s, const std::string& v) -> apply_result {
             if (v != "true" && v != "false") {
                 return "expected true or false";
             }
             s.admin_tls = v == "true";
             return {};
         }},
        {"tls_cert", "ADMS_TLS_CERT", "PEM certificate chain for TLS",
         [](settings& s, const std::string& v) -> apply_result {
             s.tls_cert = v;
             return {};
         }},
        {"tls_key", "ADMS_TLS_KEY", "PEM private key for TLS",
         [](settings& s, const std::string& v) -> apply_result {
             s.tls_key = v;
             return {};
         }},
        {"ntp_listen", "ADMS_NTP_LISTEN",
         "address:port of the SNTP server relaying the host clock, e.g. 0.0.0.0:123 (default: off)",
         [](settings& s, const std::string& v) -> apply_result {
             if (!v.empty() && !split_listen(v)) {
                 return "expected ADDRESS:PORT, e.g. 0.0.0.0:123";
             }
             s.ntp_listen = v;
             return {};
         }},
        {"ntp_stratum", "ADMS_NTP_STRATUM",
         "stratum answered while the host clock is synchronised, 2..15 (default 4)",
         integer_setting(&settings::ntp_stratum, 2, 15)},
        {"ntp_local_stratum", "ADMS_NTP_LOCAL_STRATUM",
         "1..15: serve the host clock at this stratum even when unsynchronised (default 0: off)",
         integer_setting(&settings::ntp_local_stratum, 0, 15)},
        {"admin_token", "ADMS_ADMIN_TOKEN",
         "admin API bearer token(s), comma-separated (default: generated into data_dir)",
         [](settings& s, const std::string& v) -> apply_result {
             std::vector<std::string> tokens;
             std::size_t start = 0;
             while (start <= v.size()) {
                 auto comma = std::min(v.find(',', start), v.size());
                 std::string token = v.substr(start, comma - start);
                 if (token.size() < 16 || !printable_without_spaces(token)) {
                     // Never echo a token into a log line: say what is wrong without it.
                     return "expected tokens of at least 16 printable characters without spaces";
                 }
                 tokens.push_back(std::move(token));
                 start = comma + 1;
             }
             s.admin_tokens = std::move(tokens);
             return {};
         },
         true},
        {"metrics_auth", "ADMS_METRICS_AUTH",
         "token (default: /metrics needs the admin token) or none (open to scrapers)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v != "token" && v != "none") {
                 return "expected token or none";
             }
             s.metrics_require_token = v == "token";
             return {};
         }},
        {"data_dir", "ADMS_DATA_DIR", "directory of the SQLite database (created if missing)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v.empty()) {
                 return "expected a directory";
             }
             s.data_dir = v;
             return {};
         }},
        {"time_zone", "ADMS_TIME_ZONE",
         "IANA zone of the devices (default: TZ, else /etc/localtime, else UTC)",
         [](settings& s, const std::string& v) -> apply_result {
             s.time_zone = v;
             return {};
         }},
        {"threads", "ADMS_THREADS", "I/O threads (0 = one per core)",
         integer_setting(&settings::threads, 0, 256)},
        {"log_format", "ADMS_LOG_FORMAT", "django (default) or json",
         [](settings& s, const std::string& v) -> apply_result {
             if (v != "django" && v != "json") {
                 return "expected django or json";
             }
             s.log_format = v;
             return {};
         }},
        {"admission", "ADMS_ADMISSION",
         "open (new devices are registered) or approval (unknown devices are refused, their "
         "uploads quarantined)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v != "open" && v != "approval") {
                 return "expected open or approval";
             }
             s.approval_required = v == "approval";
             return {};
         }},
        {"device_networks", "ADMS_DEVICE_NETWORKS",
         "source networks allowed to use /iclock/, comma-separated CIDR (default: any)",
         [](settings& s, const std::string& v) -> apply_result {
             auto parsed = network_list::parse(v);
             if (!parsed.value) {
                 return parsed.error;
             }
             s.device_networks = v;
             return {};
         }},
        {"device_rate_limit", "ADMS_DEVICE_RATE_LIMIT",
         "handshakes and uploads a second per serial number, 0 = no limit (default 20)",
         integer_setting(&settings::device_rate_limit, 0, 1'000'000)},
        {"address_rate_limit", "ADMS_ADDRESS_RATE_LIMIT",
         "handshakes and uploads a second per source address, 0 = no limit (the default)",
         integer_setting(&settings::address_rate_limit, 0, 1'000'000)},
        {"comm_key", "ADMS_COMM_KEY",
         "communication key devices must send (pushcommkey) unless their own is set",
         [](settings& s, const std::string& v) -> apply_result {
             if (!printable_without_spaces(v)) {
                 return "expected printable characters without spaces";
             }
             s.comm_key = v;
             return {};
         },
         true},
        {"mqtt_url", "ADMS_MQTT_URL",
         "MQTT broker for the tylink time service, mqtt://host[:port] or mqtts:// (default: off)",
         [](settings& s, const std::string& v) -> apply_result {
             if (!v.empty()) {
                 if (auto parsed = parse_mqtt_url(v); !parsed.value) {
                     return parsed.error;
                 }
             }
             s.mqtt_url = v;
             return {};
         },
         true},
        {"mqtt_username", "ADMS_MQTT_USERNAME", "MQTT user name (overrides the URL's)",
         [](settings& s, const std::string& v) -> apply_result {
             s.mqtt_username = v;
             return {};
         }},
        {"mqtt_password", "ADMS_MQTT_PASSWORD", "MQTT password (with mqtt_username)",
         [](settings& s, const std::string& v) -> apply_result {
             s.mqtt_password = v;
             return {};
         },
         true},
        {"mqtt_ca_file", "ADMS_MQTT_CA_FILE", "PEM CA certificates for mqtts:// (default: system)",
         [](settings& s, const std::string& v) -> apply_result {
             s.mqtt_ca_file = v;
             return {};
         }},
        {"mqtt_client_id", "ADMS_MQTT_CLIENT_ID", "MQTT client id (default: admsd-<hostname>)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v.size() > 128 || !printable_without_spaces(v)) {
                 return "expected at most 128 printable characters without spaces";
             }
             s.mqtt_client_id = v;
             return {};
         }},
        {"max_body_bytes", "ADMS_MAX_BODY_BYTES", "largest request body accepted (413 above)",
         integer_setting(&settings::max_body_bytes, 1024, 1LL << 30)},
        {"read_timeout", "ADMS_READ_TIMEOUT", "deadline to read one request, e.g. 30s",
         [](settings& s, const std::string& v) -> apply_result {
             auto d = parse_duration(v);
             if (!d || *d < std::chrono::seconds{1}) {
                 return "expected a duration such as 30s";
             }
             s.read_timeout = *d;
             return {};
         }},
        {"poll_delay", "ADMS_POLL_DELAY", "Delay= sent to devices: seconds between polls",
         integer_setting(&settings::poll_delay, 1, 3600)},
        {"error_delay", "ADMS_ERROR_DELAY", "ErrorDelay= sent to devices: retry after an error",
         integer_setting(&settings::error_delay, 1, 3600)},
        {"time_dialect", "ADMS_TIME_DIALECT",
         "att (SET OPTIONS DateTime=) or att-singular (SET OPTION DateTime=)",
         [](settings& s, const std::string& v) -> apply_result {
             auto dialect = parse_time_dialect(v);
             if (!dialect) {
                 return "expected att or att-singular";
             }
             s.dialect = *dialect;
             return {};
         }},
        {"sync_at", "ADMS_SYNC_AT", "daily time sync, local HH:MM",
         [](settings& s, const std::string& v) -> apply_result {
             auto t = parse_time_of_day(v);
             if (!t) {
                 return "expected HH:MM";
             }
             s.sync_at = *t;
             return {};
         }},
        {"sync_interval", "ADMS_SYNC_INTERVAL",
         "extra periodic time sync, e.g. 6h (off by default)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v.empty()) {
                 s.sync_interval.reset();
                 return {};
             }
             auto interval = parse_sync_interval(v);
             if (!interval) {
                 return "expected a duration of at least 1m, e.g. 6h, or off";
             }
             // Off: no interval at all (the policy treats zero the same way).
             s.sync_interval = *interval > std::chrono::minutes{0} ? interval : std::nullopt;
             return {};
         }},
        {"command_resend_after", "ADMS_COMMAND_RESEND_AFTER",
         "re-send a command not answered after this long, e.g. 60s",
         [](settings& s, const std::string& v) -> apply_result {
             auto d = parse_duration(v);
             if (!d || *d < std::chrono::seconds{1}) {
                 return "expected a duration such as 60s";
             }
             s.command_resend_after = *d;
             return {};
         }},
        {"command_max_attempts", "ADMS_COMMAND_MAX_ATTEMPTS",
         "sends of one command before it expires",
         integer_setting(&settings::command_max_attempts, 1, 100)},
        {"drift_threshold", "ADMS_DRIFT_THRESHOLD",
         "warn when a device's estimated clock offset exceeds this, e.g. 60s (off: no drift "
         "watch)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v == "off") {
                 s.drift_threshold = std::chrono::seconds{0};
                 return {};
             }
             auto d = parse_duration(v);
             if (!d || *d < std::chrono::seconds{2}) {
                 return "expected a duration of at least 2s, e.g. 60s, or off";
             }
             s.drift_threshold = *d;
             return {};
         }},
        {"drift_auto_sync", "ADMS_DRIFT_AUTO_SYNC",
         "true: a clock beyond drift_threshold also gets a time sync queued",
         [](settings& s, const std::string& v) -> apply_result {
             if (v != "true" && v != "false") {
                 return "expected true or false";
             }
             s.drift_auto_sync = v == "true";
             return {};
         }},
        {"webhook_allow_networks", "ADMS_WEBHOOK_ALLOW_NETWORKS",
         "networks webhooks may reach although not public, comma-separated CIDR (default: "
         "none; never settable through the API)",
         [](settings& s, const std::string& v) -> apply_result {
             auto parsed = network_list::parse(v);
             if (!parsed.value) {
                 return parsed.error;
             }
             s.webhook_allow_networks = v;
             return {};
         }},
        {"webhook_retention", "ADMS_WEBHOOK_RETENTION",
         "how long delivered webhook events are kept, e.g. 30d (default 30d)",
         [](settings& s, const std::string& v) -> apply_result {
             auto d = parse_duration(v);
             if (!d || *d < std::chrono::hours{1}) {
                 return "expected a duration of at least 1h, e.g. 30d";
             }
             s.webhook_retention = *d;
             return {};
         }},
        {"webhook_max_in_flight", "ADMS_WEBHOOK_MAX_IN_FLIGHT",
         "webhook requests at once per endpoint (default 4)",
         integer_setting(&settings::webhook_max_in_flight, 1, 64)},
        {"webhook_retry_schedule", "ADMS_WEBHOOK_RETRY_SCHEDULE",
         "waits between probes of an unavailable endpoint, the last repeating (default "
         "5s,30s,1m,2m,5m)",
         schedule_setting(&settings::webhook_retry_schedule)},
        {"webhook_reject_schedule", "ADMS_WEBHOOK_REJECT_SCHEDULE",
         "waits before re-sending an event a receiver rejected with a 4xx; then it is parked "
         "(default 5s,5m)",
         schedule_setting(&settings::webhook_reject_schedule)},
        {"webhook_disable_after", "ADMS_WEBHOOK_DISABLE_AFTER",
         "disable an endpoint unavailable this long, keeping its events (default 5d; off: never)",
         [](settings& s, const std::string& v) -> apply_result {
             if (v == "off") {
                 s.webhook_disable_after = std::chrono::seconds{0};
                 return {};
             }
             auto d = parse_duration(v);
             if (!d || *d < std::chrono::minutes{1}) {
                 return "expected a duration of at least 1m, e.g. 5d, or off";
             }
             s.webhook_disable_after = *d;
             return {};
         }},
        {"device_offline_polls", "ADMS_DEVICE_OFFLINE_POLLS",
         "a device silent for this many poll delays is offline (device.offline; default 6)",
         integer_setting(&settings::device_offline_polls, 2, 1000)},
    };
    return all;
}

// The host's zone name from /etc/localtime (a link into a zoneinfo tree) or /etc/timezone.
std::string host_zone_name()
{
    std::error_code ec;
    auto target = std::filesystem::read_symlink("/etc/localtime", ec);
    if (!ec) {
        auto text = target.string();
        if (auto at = text.find("zoneinfo/"); at != std::string::npos) {
            return text.substr(at + 9);
        }
    }
    return {};
}

std::string text_of(const toml::node& node)
{
    if (auto s = node.value<std::string>()) {
        return *s;
    }
    // Before integers: toml++ would read a boolean as the integer 0 or 1.
    if (node.is_boolean()) {
        return node.value<bool>().value_or(false) ? "true" : "false";
    }
    if (auto i = node.value<long long>()) {
        return std::to_string(*i);
    }
    if (const auto* array = node.as_array()) {
        // A list (admin_token = ["…", "…"]) reads like the comma-separated form.
        std::string joined;
        for (const auto& item : *array) {
            joined += (joined.empty() ? "" : ",") + text_of(item);
        }
        return joined;
    }
    return {};
}

// Reads the [devices.<SN>] tables.
apply_result apply_devices(settings& s, const toml::table& devices)
{
    for (const auto& [sn_key, node] : devices) {
        std::string sn{sn_key.str()};
        const auto* table = node.as_table();
        if (table == nullptr) {
            return fmt::format("invalid devices.{}: expected a table", sn);
        }
        device_settings device;
        for (const auto& [key_node, value_node] : *table) {
            std::string key{key_node.str()};
            std::string value = text_of(value_node);
            std::string where = fmt::format("devices.{}.{}", sn, key);
            if (key == "alias") {
                if (!valid_alias(value)) {
                    return fmt::format("invalid {} '{}': expected {}", where, value, alias_rule);
                }
                device.alias = value;
            } else if (key == "time_zone") {
                if (!tz::locate_zone(value)) {
                    return fmt::format("invalid {} '{}': unknown time zone", where, value);
                }
                device.time_zone = value;
            } else if (key == "time_dialect") {
                device.dialect = parse_time_dialect(value);
                if (!device.dialect) {
                    return fmt::format("invalid {} '{}': expected att or att-singular", where,
                                       value);
                }
            } else if (key == "sync_at") {
                device.sync_at = parse_time_of_day(value);
                if (!device.sync_at) {
                    return fmt::format("invalid {} '{}': expected HH:MM", where, value);
                }
            } else if (key == "comm_key") {
                if (value.empty() || !printable_without_spaces(value)) {
                    // Never echo a key: say what is wrong without it.
                    return fmt::format("invalid {}: expected printable characters without spaces",
                                       where);
                }
                device.comm_key = value;
            } else if (key == "sync_interval") {
                // "off" is zero minutes: no periodic sync for this device, whatever the global
                // sync_interval says.
                device.sync_interval = parse_sync_interval(value);
                if (!device.sync_interval) {
                    return fmt::format("invalid {} '{}': expected a duration of at least 1m, "
                                       "e.g. 6h, or off",
                                       where, value);
                }
            } else {
                return fmt::format("unknown setting {}", where);
            }
        }
        s.devices[sn] = std::move(device);
    }
    return {};
}

apply_result apply_file(settings& s, const std::string& path)
{
    toml::table file;
    try {
        file = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return fmt::format("invalid config file '{}': {} (line {})", path, e.description(),
                           e.source().begin.line);
    }
    for (const auto& [key_node, node] : file) {
        std::string key{key_node.str()};
        if (key == "webhooks") {
            if (const auto* webhooks = node.as_table()) {
                if (auto error = apply_webhooks(s, *webhooks); !error.empty()) {
                    return error;
                }
                continue;
            }
            return "invalid webhooks: expected a table of [webhooks.<name>]";
        }
        if (key == "devices") {
            if (const auto* devices = node.as_table()) {
                if (auto error = apply_devices(s, *devices); !error.empty()) {
                    return error;
                }
                continue;
            }
            return "invalid devices: expected a table of [devices.<SN>]";
        }
        if (key == "exports") {
            if (auto error = read_export_tables(node, s.exports); !error.empty()) {
                return error;
            }
            continue;
        }
        auto spec = std::find_if(specs().begin(), specs().end(),
                                 [&](const setting_spec& sp) { return key == sp.key; });
        if (spec == specs().end()) {
            return fmt::format("unknown setting '{}' in config file '{}'", key, path);
        }
        std::string value = text_of(node);
        if (auto error = spec->apply(s, value); !error.empty()) {
            return bad(spec->key, shown(*spec, value), error);
        }
    }
    return {};
}

} // namespace

std::string settings_help()
{
    std::string text =
        "usage: admsd [--config FILE] [--SETTING VALUE]... | --help | --version\n"
        "       admsd healthcheck [--config FILE] [--SETTING VALUE]...  (GET /healthz, exit 0 if "
        "healthy)\n"
        "ADMS/iclock push server for ZKTeco terminals.\n\n"
        "Each setting is a flag, an environment variable and a config file key;\n"
        "flags beat the environment, which beats the file (--config / ADMS_CONFIG).\n\n";
    for (const auto& spec : specs()) {
        text += fmt::format("  {:<26} {:<28} {}\n", flag_of(spec), spec.env, spec.help);
    }
    text += "\nPer-device settings live in the config file, e.g.\n"
            "  [devices.RKQ4243400358]\n"
            "  alias = \"principal\"\n  time_zone = \"Asia/Riyadh\"\n  sync_interval = \"6h\"\n";
    return text;
}

namespace {

// The command line, read before anything is applied: --help/--version end the read, --config
// names the file, every other flag is kept to be applied last (flags beat the environment).
struct command_line {
    bool show_help = false;
    bool show_version = false;
    std::optional<std::string> config_path;
    std::vector<std::pair<const setting_spec*, std::string>> flags;
};

std::variant<command_line, std::string> read_command_line(const std::vector<std::string>& args)
{
    command_line line;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--help" || arg == "-h") {
            line.show_help = true;
            return line;
        }
        if (arg == "--version") {
            line.show_version = true;
            return line;
        }
        std::string name = arg;
        std::optional<std::string> value;
        if (auto eq = arg.find('='); eq != std::string::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        if (!value) {
            if (i + 1 >= args.size()) {
                return fmt::format("missing value after {}", name);
            }
            value = args[++i];
        }
        if (name == "--config") {
            line.config_path = *value;
            continue;
        }
        auto spec = std::find_if(specs().begin(), specs().end(),
                                 [&](const setting_spec& sp) { return flag_of(sp) == name; });
        if (spec == specs().end()) {
            return fmt::format("unknown option '{}' (try --help)", name);
        }
        line.flags.emplace_back(&*spec, *value);
    }
    return line;
}

// What is left unset after every source: the zone (TZ, then the host's, then UTC) and the
// thread count (one per core).
std::string complete_defaults(settings& s, const std::string* tz_env)
{
    if (s.time_zone.empty()) {
        if (tz_env && !tz_env->empty()) {
            s.time_zone = tz_env->front() == ':' ? tz_env->substr(1) : *tz_env;
        } else if (auto host = host_zone_name(); !host.empty()) {
            s.time_zone = host;
        } else {
            s.time_zone = "UTC";
        }
    }
    if (auto lookup = tz::locate_zone(s.time_zone); !lookup) {
        return fmt::format("invalid time zone '{}': not in the zone database", s.time_zone);
    }
    if (s.threads == 0) {
        s.threads = std::max(1u, std::thread::hardware_concurrency());
    }
    return {};
}

} // namespace

settings_load load_settings(const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& environment)
{
    settings_load result;
    auto read = read_command_line(args);
    if (auto* error = std::get_if<std::string>(&read)) {
        result.error = std::move(*error);
        return result;
    }
    auto& line = std::get<command_line>(read);
    if (line.show_help || line.show_version) {
        result.show_help = line.show_help;
        result.show_version = line.show_version;
        return result;
    }
    auto env = [&](const char* name) -> const std::string* {
        auto it = environment.find(name);
        return it == environment.end() ? nullptr : &it->second;
    };
    if (!line.config_path) {
        if (const auto* path = env("ADMS_CONFIG")) {
            line.config_path = *path;
        }
    }
    settings s;
    if (line.config_path) {
        if (auto error = apply_file(s, *line.config_path); !error.empty()) {
            result.error = error;
            return result;
        }
    }
    for (const auto& spec : specs()) {
        if (const auto* value = env(spec.env)) {
            if (auto error = spec.apply(s, *value); !error.empty()) {
                result.error =
                    fmt::format("invalid {} '{}': {}", spec.env, shown(spec, *value), error);
                return result;
            }
        }
    }
    for (const auto& [spec, value] : line.flags) {
        if (auto error = spec->apply(s, value); !error.empty()) {
            result.error =
                fmt::format("invalid {} '{}': {}", flag_of(*spec), shown(*spec, value), error);
            return result;
        }
    }
    if (auto error = complete_defaults(s, env("TZ")); !error.empty()) {
        result.error = std::move(error);
        return result;
    }
    result.value = std::move(s);
    return result;
}

} // namespace adms::server
