#include "server/config/settings.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <vector>

using namespace std::chrono;
using adms::server::load_settings;
using adms::server::parse_duration;
using adms::server::parse_time_of_day;
using adms::server::time_dialect;

namespace {

// Writes a config file for one test and removes it afterwards.
struct config_file {
    std::filesystem::path path;
    explicit config_file(const std::string& text)
    {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               fmt::format("admsd-settings-{}-{}.toml", ::getpid(), counter++);
        std::ofstream{path} << text;
    }
    ~config_file() { std::filesystem::remove(path); }
};

} // namespace

TEST_CASE("Defaults apply when nothing is set, with the zone from TZ", "[settings]")
{
    auto loaded = load_settings({}, {{"TZ", ":Asia/Riyadh"}});
    REQUIRE(loaded.value);
    CHECK(loaded.value->listen == "0.0.0.0:8080");
    CHECK(loaded.value->data_dir == "./data");
    CHECK(loaded.value->time_zone == "Asia/Riyadh");
    CHECK(loaded.value->log_format == "django");
    CHECK_FALSE(loaded.value->approval_required);
    CHECK(loaded.value->sync_at == 3h);
    CHECK(loaded.value->threads >= 1);
}

TEST_CASE("Flags beat the environment, which beats the config file", "[settings]")
{
    config_file file{"listen = \"127.0.0.1:1000\"\ntime_zone = \"Asia/Kolkata\"\n"
                     "poll_delay = 20\nadmission = \"approval\"\n"};
    std::map<std::string, std::string> env{{"ADMS_LISTEN", "127.0.0.1:2000"},
                                           {"ADMS_CONFIG", file.path.string()}};
    auto from_env = load_settings({}, env);
    REQUIRE(from_env.value);
    CHECK(from_env.value->listen == "127.0.0.1:2000");
    CHECK(from_env.value->time_zone == "Asia/Kolkata");
    CHECK(from_env.value->poll_delay == 20);
    CHECK(from_env.value->approval_required);

    auto from_flag = load_settings({"--listen", "127.0.0.1:3000", "--poll-delay=5"}, env);
    REQUIRE(from_flag.value);
    CHECK(from_flag.value->listen == "127.0.0.1:3000");
    CHECK(from_flag.value->poll_delay == 5);
}

TEST_CASE("Per-device settings come from [devices.<SN>] tables", "[settings]")
{
    config_file file{"time_zone = \"UTC\"\n"
                     "[devices.RKQ4243400358]\nalias = \"principal\"\n"
                     "time_zone = \"Asia/Riyadh\"\ntime_dialect = \"att-singular\"\n"
                     "sync_at = \"02:30\"\nsync_interval = \"6h\"\n"};
    auto loaded = load_settings({"--config", file.path.string()}, {});
    REQUIRE(loaded.value);
    const auto& device = loaded.value->devices.at("RKQ4243400358");
    CHECK(device.alias == "principal");
    CHECK(device.time_zone == "Asia/Riyadh");
    CHECK(device.dialect == time_dialect::att_singular);
    CHECK(device.sync_at == 2h + 30min);
    CHECK(device.sync_interval == 6h);
}

TEST_CASE("A bad value stops loading with one line naming the setting and the value", "[settings]")
{
    CHECK(load_settings({"--time-zone", "Mars/Base"}, {}).error ==
          "invalid time zone 'Mars/Base': not in the zone database");
    CHECK(load_settings({}, {{"ADMS_TIME_ZONE", "Nowhere"}}).error ==
          "invalid time zone 'Nowhere': not in the zone database");
    CHECK(load_settings({"--listen", "8080"}, {}).error ==
          "invalid --listen '8080': expected ADDRESS:PORT, e.g. 0.0.0.0:8080");
    CHECK(load_settings({}, {{"ADMS_LOG_FORMAT", "xml"}}).error ==
          "invalid ADMS_LOG_FORMAT 'xml': expected django or json");
    CHECK(load_settings({"--threads", "-1"}, {}).error ==
          "invalid --threads '-1': expected a whole number from 0 to 256");
    CHECK(load_settings({"--bogus", "1"}, {}).error == "unknown option '--bogus' (try --help)");
    CHECK(load_settings({"--listen"}, {}).error == "missing value after --listen");

    config_file bad_zone{"[devices.A1]\ntime_zone = \"Asia/Atlantis\"\n"};
    CHECK(load_settings({"--config", bad_zone.path.string()}, {}).error ==
          "invalid devices.A1.time_zone 'Asia/Atlantis': unknown time zone");
    config_file unknown_key{"colour = \"blue\"\n"};
    CHECK(load_settings({"--config", unknown_key.path.string()}, {})
              .error.find("unknown setting 'colour'") == 0);
    config_file broken{"listen = \n"};
    CHECK(load_settings({"--config", broken.path.string()}, {}).error.find("invalid config file") ==
          0);
    CHECK(load_settings({"--config", "/nonexistent/admsd.toml"}, {})
              .error.find("invalid config file '/nonexistent/admsd.toml'") == 0);
}

TEST_CASE("--help and --version are recognised anywhere", "[settings]")
{
    CHECK(load_settings({"--listen", "1.2.3.4:5", "--help"}, {}).show_help);
    CHECK(load_settings({"--version"}, {}).show_version);
}

TEST_CASE("Durations and times of day parse strictly", "[settings]")
{
    CHECK(parse_duration("90s") == 90s);
    CHECK(parse_duration("90") == 90s);
    CHECK(parse_duration("15m") == 15min);
    CHECK(parse_duration("6h") == 6h);
    CHECK(parse_duration("1d") == 24h);
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("h"));
    CHECK_FALSE(parse_duration("-5s"));
    CHECK_FALSE(parse_duration("5 h"));
    CHECK_FALSE(parse_duration("9999999d"));
    CHECK(parse_time_of_day("03:00") == 3h);
    CHECK(parse_time_of_day("23:59") == 23h + 59min);
    CHECK_FALSE(parse_time_of_day("24:00"));
    CHECK_FALSE(parse_time_of_day("3:00"));
    CHECK_FALSE(parse_time_of_day("03:60"));
}

TEST_CASE("Admin settings: tokens from any source, a separate listen and metrics auth",
          "[settings]")
{
    auto defaults = load_settings({}, {{"TZ", "UTC"}});
    REQUIRE(defaults.value);
    CHECK(defaults.value->admin_tokens.empty());
    CHECK(defaults.value->admin_listen.empty());
    CHECK(defaults.value->metrics_require_token);

    auto from_env =
        load_settings({}, {{"TZ", "UTC"},
                           {"ADMS_ADMIN_TOKEN", "first-token-0123456789,second-token-0123456789"},
                           {"ADMS_ADMIN_LISTEN", "127.0.0.1:8081"},
                           {"ADMS_METRICS_AUTH", "none"}});
    REQUIRE(from_env.value);
    CHECK(from_env.value->admin_tokens ==
          std::vector<std::string>{"first-token-0123456789", "second-token-0123456789"});
    CHECK(from_env.value->admin_listen == "127.0.0.1:8081");
    CHECK_FALSE(from_env.value->metrics_require_token);

    config_file file{"admin_token = [\"file-token-0123456789\", \"other-token-0123456789\"]\n"};
    auto from_file = load_settings({"--config", file.path.string()}, {{"TZ", "UTC"}});
    REQUIRE(from_file.value);
    CHECK(from_file.value->admin_tokens.size() == 2);

    // A weak token is refused without echoing it.
    auto weak = load_settings({"--admin-token", "hunter2"}, {{"TZ", "UTC"}});
    CHECK_FALSE(weak.value);
    CHECK_THAT(weak.error, Catch::Contains("--admin-token '(hidden)'"));
    CHECK(weak.error.find("hunter2") == std::string::npos);
    CHECK_FALSE(load_settings({"--admin-listen", "nowhere"}, {{"TZ", "UTC"}}).value);
    CHECK_FALSE(load_settings({"--metrics-auth", "maybe"}, {{"TZ", "UTC"}}).value);
}

TEST_CASE("MQTT settings: the URL is checked at load and secrets are never echoed", "[settings]")
{
    auto none = load_settings({}, {{"TZ", "UTC"}});
    REQUIRE(none.value);
    CHECK(none.value->mqtt_url.empty());
    CHECK(none.value->mqtt_client_id.empty());

    config_file file{"mqtt_url = \"mqtt://127.0.0.1:1884\"\nmqtt_username = \"file-user\"\n"
                     "mqtt_client_id = \"admsd-site1\"\nmqtt_ca_file = \"/etc/ca.pem\"\n"};
    auto loaded = load_settings({"--config", file.path.string(), "--mqtt-password", "pw"},
                                {{"TZ", "UTC"}, {"ADMS_MQTT_USERNAME", "env-user"}});
    REQUIRE(loaded.value);
    CHECK(loaded.value->mqtt_url == "mqtt://127.0.0.1:1884");
    CHECK(loaded.value->mqtt_username == "env-user");
    CHECK(loaded.value->mqtt_password == "pw");
    CHECK(loaded.value->mqtt_client_id == "admsd-site1");
    CHECK(loaded.value->mqtt_ca_file == "/etc/ca.pem");

    auto tls = load_settings({"--mqtt-url", "mqtts://user:pw@[::1]"}, {{"TZ", "UTC"}});
    REQUIRE(tls.value);
    CHECK(tls.value->mqtt_url == "mqtts://user:pw@[::1]");

    // One line naming the setting; the URL may hold a password, so it is not shown.
    auto bad = load_settings({"--mqtt-url", "http://user:secret@broker"}, {{"TZ", "UTC"}});
    CHECK_FALSE(bad.value);
    CHECK(bad.error.starts_with("invalid --mqtt-url '(hidden)': unsupported scheme 'http'"));
    CHECK(bad.error.find("secret") == std::string::npos);
    CHECK(bad.error.find('\n') == std::string::npos);
    for (const char* url : {"mqtt://", "mqtt://host:0", "mqtt://host:70000", "mqtt://host/a",
                            "mqtt://host?x=1", "broker:1883", "not a url"}) {
        INFO(url);
        CHECK_FALSE(load_settings({"--mqtt-url", url}, {{"TZ", "UTC"}}).value);
    }
    auto secret = load_settings({}, {{"TZ", "UTC"}, {"ADMS_MQTT_CLIENT_ID", "has space"}});
    CHECK(secret.error ==
          "invalid ADMS_MQTT_CLIENT_ID 'has space': expected at most 128 printable characters "
          "without spaces");
    CHECK(adms::server::settings_help().find("--mqtt-url") != std::string::npos);
}

TEST_CASE("NTP settings: off by default, listen and strata from any source, ranges checked",
          "[settings]")
{
    auto defaults = load_settings({}, {{"TZ", "UTC"}});
    REQUIRE(defaults.value);
    CHECK(defaults.value->ntp_listen.empty());
    CHECK(defaults.value->ntp_stratum == 4);
    CHECK(defaults.value->ntp_local_stratum == 0);

    config_file file{"ntp_listen = \"0.0.0.0:123\"\nntp_stratum = 3\nntp_local_stratum = 8\n"};
    auto from_file = load_settings({"--config", file.path.string()}, {{"TZ", "UTC"}});
    REQUIRE(from_file.value);
    CHECK(from_file.value->ntp_listen == "0.0.0.0:123");
    CHECK(from_file.value->ntp_stratum == 3);
    CHECK(from_file.value->ntp_local_stratum == 8);

    auto from_env = load_settings({"--ntp-stratum", "6"}, {{"TZ", "UTC"},
                                                           {"ADMS_CONFIG", file.path.string()},
                                                           {"ADMS_NTP_LISTEN", "[::1]:123"},
                                                           {"ADMS_NTP_STRATUM", "5"},
                                                           {"ADMS_NTP_LOCAL_STRATUM", "0"}});
    REQUIRE(from_env.value);
    CHECK(from_env.value->ntp_listen == "[::1]:123");
    CHECK(from_env.value->ntp_stratum == 6);
    CHECK(from_env.value->ntp_local_stratum == 0);

    CHECK(load_settings({"--ntp-listen", "123"}, {}).error ==
          "invalid --ntp-listen '123': expected ADDRESS:PORT, e.g. 0.0.0.0:123");
    CHECK(load_settings({"--ntp-stratum", "1"}, {}).error ==
          "invalid --ntp-stratum '1': expected a whole number from 2 to 15");
    CHECK(load_settings({"--ntp-stratum", "16"}, {}).error ==
          "invalid --ntp-stratum '16': expected a whole number from 2 to 15");
    CHECK(load_settings({}, {{"ADMS_NTP_LOCAL_STRATUM", "16"}}).error ==
          "invalid ADMS_NTP_LOCAL_STRATUM '16': expected a whole number from 0 to 15");
    CHECK_THAT(adms::server::settings_help(), Catch::Contains("--ntp-local-stratum"));
}

TEST_CASE("The example config documents every setting and loads with each key uncommented",
          "[settings]")
{
    std::ifstream in{std::string{ADMS_SOURCE_DIR} + "/deploy/admsd.toml.example"};
    REQUIRE(in);
    std::string text;
    std::string line;
    while (std::getline(in, line)) {
        // "#key = value" and "#[devices.SN]" lines are the settings; "# text" lines are comments.
        if (line.size() > 1 && line[0] == '#' && line[1] != ' ') {
            line.erase(0, 1);
        }
        text += line + "\n";
    }
    config_file file{text};
    auto loaded = load_settings({"--config", file.path.string()}, {});
    INFO(loaded.error);
    REQUIRE(loaded.value);
    CHECK(loaded.value->time_zone == "Asia/Riyadh");
    CHECK(loaded.value->devices.at("RKQ4243400358").alias == "principal");
    // Every flag --help lists has its key in the example.
    auto help = adms::server::settings_help();
    std::size_t at = 0;
    while ((at = help.find("\n  --", at)) != std::string::npos) {
        auto end = help.find(' ', at + 5);
        std::string key = help.substr(at + 5, end - at - 5);
        std::replace(key.begin(), key.end(), '-', '_');
        INFO(key);
        CHECK(text.find("\n" + key + " = ") != std::string::npos);
        at = end;
    }
}

TEST_CASE("docs/configuration.md has a table row for every setting --help lists, with its flag, "
          "variable and key",
          "[settings]")
{
    std::ifstream in{std::string{ADMS_SOURCE_DIR} + "/docs/configuration.md"};
    REQUIRE(in);
    std::vector<std::string> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with('|')) {
            rows.push_back(line);
        }
    }
    // A --help line is "  --flag  ADMS_VARIABLE  what it does"; the file key is the flag's name
    // with '_' for '-'. All three must be on one row of the table, each in backticks.
    std::istringstream help{adms::server::settings_help()};
    int settings = 0;
    while (std::getline(help, line)) {
        if (!line.starts_with("  --")) {
            continue;
        }
        std::istringstream fields{line};
        std::string flag;
        std::string variable;
        fields >> flag >> variable;
        std::string key = flag.substr(2);
        std::replace(key.begin(), key.end(), '-', '_');
        INFO(flag << " " << variable << " " << key);
        REQUIRE(variable.starts_with("ADMS_"));
        auto documents = [&](const std::string& row) {
            return row.find("`" + flag + "`") != std::string::npos &&
                   row.find("`" + variable + "`") != std::string::npos &&
                   row.find("`" + key + "`") != std::string::npos;
        };
        CHECK(std::any_of(rows.begin(), rows.end(), documents));
        ++settings;
    }
    // Guards the parsing above: if --help changed shape, no setting would be checked at all.
    CHECK(settings >= 30);
}

TEST_CASE("The drift watch's threshold and automatic sync are settings", "[settings]")
{
    auto defaults = load_settings({}, {});
    REQUIRE(defaults.value);
    CHECK(defaults.value->drift_threshold == 60s);
    CHECK_FALSE(defaults.value->drift_auto_sync);

    auto set = load_settings({"--drift-threshold", "5m"}, {{"ADMS_DRIFT_AUTO_SYNC", "true"}});
    REQUIRE(set.value);
    CHECK(set.value->drift_threshold == 300s);
    CHECK(set.value->drift_auto_sync);

    config_file file{"drift_threshold = \"off\"\ndrift_auto_sync = false\n"};
    auto from_file = load_settings({"--config", file.path.string()}, {});
    REQUIRE(from_file.value);
    CHECK(from_file.value->drift_threshold == 0s);

    CHECK(load_settings({"--drift-threshold", "1s"}, {}).error ==
          "invalid --drift-threshold '1s': expected a duration of at least 2s, e.g. 60s, or off");
    CHECK(load_settings({"--drift-auto-sync", "yes"}, {}).error ==
          "invalid --drift-auto-sync 'yes': expected true or false");
}

TEST_CASE("sync_interval = \"off\" is accepted wherever the setting is: globally and per device",
          "[settings]")
{
    // Globally: no periodic sync at all.
    auto global = load_settings({"--sync-interval", "off"}, {});
    REQUIRE(global.value);
    CHECK_FALSE(global.value->sync_interval);
    // Per device: zero minutes, which turns off a global interval for that device (the same
    // value PATCH {"sync_interval": "off"} stores).
    config_file file{"sync_interval = \"6h\"\n"
                     "[devices.A1]\nsync_interval = \"off\"\n"
                     "[devices.B2]\nsync_interval = \"90m\"\n"};
    auto loaded = load_settings({"--config", file.path.string()}, {});
    REQUIRE(loaded.value);
    CHECK(loaded.value->sync_interval == minutes{360});
    CHECK(loaded.value->devices.at("A1").sync_interval == minutes{0});
    CHECK(loaded.value->devices.at("B2").sync_interval == minutes{90});
    config_file bad{"[devices.A1]\nsync_interval = \"30s\"\n"};
    CHECK(load_settings({"--config", bad.path.string()}, {}).error ==
          "invalid devices.A1.sync_interval '30s': expected a duration of at least 1m, e.g. 6h, "
          "or off");
}

TEST_CASE("Aliases in the config file follow the admin API's rule", "[settings]")
{
    for (const std::string& alias :
         std::vector<std::string>{"sync-time", "a/b", "two words", "", std::string(65, 'a')}) {
        config_file file{fmt::format("[devices.A1]\nalias = \"{}\"\n", alias)};
        CAPTURE(alias);
        CHECK(load_settings({"--config", file.path.string()}, {}).error ==
              fmt::format("invalid devices.A1.alias '{}': expected 1 to 64 letters, digits, '-', "
                          "'_' or '.' (and not 'sync-time')",
                          alias));
    }
    config_file good{"[devices.A1]\nalias = \"front-door_2.b\"\n"};
    auto loaded = load_settings({"--config", good.path.string()}, {});
    REQUIRE(loaded.value);
    CHECK(loaded.value->devices.at("A1").alias == "front-door_2.b");
}

TEST_CASE("[webhooks.<name>] tables are read, and a bad one names its table and key",
          "[settings][webhooks]")
{
    config_file good{R"(webhook_allow_networks = ["127.0.0.0/8", "::1"]
webhook_retry_schedule = "1s,2s"
[webhooks.payroll]
url = "https://hr.example.com/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
event_types = ["punch.created", "device.offline"]
devices = ["front-door"]
timeout = "5s"
headers = { Authorization = "token k:s" }
)"};
    auto loaded = load_settings({"--config", good.path.string()}, {});
    INFO(loaded.error);
    REQUIRE(loaded.value);
    CHECK(loaded.value->webhook_allow_networks == "127.0.0.0/8,::1");
    CHECK(loaded.value->webhook_retry_schedule ==
          std::vector<std::chrono::seconds>{std::chrono::seconds{1}, std::chrono::seconds{2}});
    const auto& hook = loaded.value->webhooks.at("payroll");
    CHECK(hook.url == "https://hr.example.com/hook");
    CHECK(hook.event_types == std::vector<std::string>{"punch.created", "device.offline"});
    CHECK(hook.devices == std::vector<std::string>{"front-door"});
    CHECK(hook.timeout == std::chrono::seconds{5});
    REQUIRE(hook.headers.size() == 1);
    CHECK(hook.headers[0].first == "Authorization");

    auto refused = [](const std::string& text) {
        config_file file{text};
        return load_settings({"--config", file.path.string()}, {}).error;
    };
    CHECK_THAT(refused("[webhooks.a]\nurl = \"https://x.example/\"\ncolour = \"red\"\n"),
               Catch::Contains("webhooks.a.colour"));
    CHECK_THAT(refused("[webhooks.a]\ndescription = \"no url\"\n"),
               Catch::Contains("url is required"));
    CHECK_THAT(refused("[webhooks.a]\nurl = \"https://x.example/\"\nsecret = \"whsec_a\"\n"
                       "secret_file = \"/f\"\n"),
               Catch::Contains("not both"));
    CHECK_THAT(refused("[webhooks.a]\nurl = \"https://x.example/\"\ntimeout = \"1m\"\n"),
               Catch::Contains("1s to 30s"));
    CHECK_THAT(refused("[webhooks.a]\nurl = \"https://x.example/\"\n"
                       "headers = { webhook-id = \"x\" }\n"),
               Catch::Contains("webhooks.a.headers.webhook-id"));
    CHECK_THAT(refused("[webhooks.\"a b\"]\nurl = \"https://x.example/\"\n"),
               Catch::Contains("a name is 1 to 64"));
    CHECK_THAT(refused("webhook_retry_schedule = \"0s\"\n"), Catch::Contains("at least 1s"));
    CHECK_THAT(refused("webhook_allow_networks = \"10.0.0.1/8\"\n"),
               Catch::Contains("webhook_allow_networks"));
}
