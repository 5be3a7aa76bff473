#include "server/admin/admin_api.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/devicecmd.hpp"
#include "protocol/info.hpp"
#include "protocol/text.hpp"
#include "server/admin/api_format.hpp"
#include "server/admin/command_request.hpp"
#include "server/admin/json_input.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/devices/device_service.hpp"
#include "server/http/net.hpp"
#include "server/observability/log_format.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/security/access_control.hpp"
#include "server/security/admin_token.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/timekeeping/clock_estimate.hpp"
#include "server/version.hpp"

#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace adms::server {
namespace {

namespace json = boost::json;
using clock = std::chrono::system_clock;

// How long POST …/sync-time waits for the device by default, and at most.
constexpr int default_sync_timeout_s = 30;
constexpr int max_sync_timeout_s = 300;
// Punch pages: the default and largest `limit`, and the rows per CSV chunk.
constexpr std::size_t default_punch_limit = 1000;
constexpr std::size_t max_punch_limit = 10000;
constexpr std::size_t default_drift_limit = 1000;
constexpr std::size_t max_drift_limit = 10000;
constexpr std::size_t csv_page_rows = 2000;
// Time-sync commands listed in GET /devices/{id}.
constexpr std::size_t listed_time_syncs = 5;

instant now_instant()
{
    return std::chrono::floor<std::chrono::milliseconds>(clock::now());
}

http_response json_reply(unsigned status, const json::value& body)
{
    return {status, "application/json", json::serialize(body), {}, {}};
}

http_response error_reply(unsigned status, std::string message)
{
    return json_reply(status, json::object{{"success", false}, {"error", std::move(message)}});
}

http_response input_reply(const input_error& error)
{
    return {400, "application/json", error_body(error), {}, {}};
}

// The id the API shows for a device: its alias, else its serial number.
std::string id_of(const device_snapshot& d)
{
    return d.record.alias && !d.record.alias->empty() ? *d.record.alias : d.record.serial_number;
}

tz::zone zone_of(const device_snapshot& d)
{
    auto found = tz::locate_zone(d.zone_name);
    return found ? *found.value : *tz::locate_zone("UTC").value;
}

std::string format_minutes(std::chrono::minutes m)
{
    return m.count() % 60 == 0 ? fmt::format("{}h", m.count() / 60) : fmt::format("{}m", m.count());
}

std::string format_time_of_day(std::chrono::minutes m)
{
    return fmt::format("{:02}:{:02}", m.count() / 60, m.count() % 60);
}

json::value optional_time(const std::optional<instant>& t, const tz::zone& zone)
{
    return t ? json::value(format_iso(*t, zone)) : json::value(nullptr);
}

std::optional<std::string> option_value(const device_record& r, std::string_view key)
{
    for (const auto& kv : r.options) {
        if (kv.key == key) {
            return kv.value;
        }
    }
    return std::nullopt;
}

// Query parameters, decoded, in order.
using query_params = std::vector<std::pair<std::string, std::string>>;

// The first parameter not in `known`, as an error.
std::optional<input_error> reject_unknown_params(const query_params& params,
                                                 std::initializer_list<std::string_view> known)
{
    for (const auto& [key, value] : params) {
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            std::string list;
            for (auto k : known) {
                list += (list.empty() ? "" : ", ") + std::string{k};
            }
            return input_error{key, fmt::format("unknown query parameter; expected {}",
                                                list.empty() ? "none" : list)};
        }
    }
    return std::nullopt;
}

const std::string* find_param(const query_params& params, std::string_view key)
{
    for (const auto& [k, v] : params) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

std::optional<long long> parse_number(std::string_view text)
{
    return protocol::text::parse_integer<long long>(text);
}

std::optional<bool> parse_flag(std::string_view text)
{
    if (text == "true" || text == "1" || text == "yes") {
        return true;
    }
    if (text == "false" || text == "0" || text == "no") {
        return false;
    }
    return std::nullopt;
}

// How one device's time sync ended, as the API answers it.
struct sync_result {
    unsigned status = 500;
    json::object body;
};

} // namespace

struct admin_api::impl {
    impl(const settings& c, device_service& d, storage& s, blocking_pool& r, metrics& m,
         command_waiters& w, logger& l, std::vector<std::string> t)
        : config{c}, devices{d}, store{s}, reader{r}, stats{m}, waiters{w}, log{l}, tokens{
                                                                                        std::move(
                                                                                            t)}
    {
    }

    const settings& config;
    device_service& devices;
    storage& store;
    blocking_pool& reader;
    metrics& stats;
    command_waiters& waiters;
    logger& log;
    std::vector<std::string> tokens;
    // Ten failed logins a minute per address, then 429 until the bucket refills.
    rate_limiter auth_failures{10.0 / 60, 10};
    log_throttle auth_log;
    std::atomic<std::uint64_t> auth_failure_count{0};
    std::atomic<bool> stopping{false};

    // A device polls every Delay seconds; three missed polls and it counts as offline.
    std::chrono::milliseconds online_window() const
    {
        return std::chrono::seconds{3 * config.poll_delay};
    }

    bool online(const device_snapshot& d, instant now) const
    {
        return now - d.record.last_seen <= online_window();
    }

    json::object device_json(const device_snapshot& d, instant now) const;

    boost::asio::awaitable<http_response> route(const http_request& request);
    boost::asio::awaitable<http_response> healthz();
    boost::asio::awaitable<http_response> list_devices();
    boost::asio::awaitable<http_response> get_device(const device_snapshot& d);
    boost::asio::awaitable<http_response> patch_device(const device_snapshot& d,
                                                       const http_request& request);
    boost::asio::awaitable<sync_result> sync_one(std::string requested_id, int timeout_s,
                                                 bool wait);
    boost::asio::awaitable<http_response> sync_many(const http_request& request,
                                                    const query_params& params);
    boost::asio::awaitable<http_response> device_time(const device_snapshot& d);
    boost::asio::awaitable<http_response> device_drift(const device_snapshot& d,
                                                       const query_params& params);
    http_response ping(const device_snapshot& d) const;
    boost::asio::awaitable<http_response> post_command(const device_snapshot& d,
                                                       const http_request& request);
    boost::asio::awaitable<http_response> list_commands(const device_snapshot& d);
    boost::asio::awaitable<http_response> punches(const query_params& params, bool csv);
};

admin_api::admin_api(const settings& config, device_service& devices, storage& store,
                     blocking_pool& reader, metrics& stats, command_waiters& waiters, logger& log,
                     std::vector<std::string> tokens)
    : impl_{std::make_shared<impl>(config, devices, store, reader, stats, waiters, log,
                                   std::move(tokens))}
{
}

boost::asio::awaitable<http_response> admin_api::handle(const http_request& request)
{
    co_return co_await impl_->route(request);
}

void admin_api::stop()
{
    impl_->stopping = true;
    impl_->waiters.cancel_all();
}

json::object admin_api::impl::device_json(const device_snapshot& d, instant now) const
{
    auto zone = zone_of(d);
    const auto& r = d.record;
    json::object o;
    o["id"] = id_of(d);
    o["sn"] = r.serial_number;
    o["alias"] = r.alias ? json::value(*r.alias) : json::value(nullptr);
    o["online"] = online(d, now);
    o["last_seen"] = format_iso(r.last_seen, zone);
    o["first_seen"] = format_iso(r.first_seen, zone);
    o["zone"] = d.zone_name;
    auto info = protocol::parse_info(r.info);
    auto model = option_value(r, "~DeviceName");
    auto firmware = option_value(r, "FWVersion");
    if (!firmware && info && !info->firmware.empty()) {
        firmware = info->firmware;
    }
    o["model"] = model ? json::value(*model) : json::value(nullptr);
    o["firmware"] = firmware ? json::value(*firmware) : json::value(nullptr);
    o["remote_address"] = r.remote_address;
    o["push_version"] = r.push_version;
    o["protocol"] = r.dialect;
    o["approved"] = r.approved;
    o["time_dialect"] = d.dialect == time_dialect::att_singular ? "att-singular" : "att";
    o["sync_at"] = format_time_of_day(d.sync_at);
    o["sync_interval"] =
        d.sync_interval ? json::value(format_minutes(*d.sync_interval)) : json::value(nullptr);
    o["last_time_sync"] = json::object{
        {"queued_at", optional_time(r.time_sync_sent_at, zone)},
        {"confirmed_at", optional_time(r.time_sync_confirmed_at, zone)},
        {"error",
         r.time_sync_error.empty() ? json::value(nullptr) : json::value(r.time_sync_error)},
    };
    return o;
}

namespace {

json::object command_json(const queued_command& c, const tz::zone& zone)
{
    json::object o;
    o["id"] = c.id;
    o["kind"] = c.kind;
    if (is_time_sync(c)) {
        // The stored text of a time sync not yet sent is a placeholder no device ever gets: its
        // DateTime is encoded at the whole second the reply goes out.
        auto sent = time_sync_text(c);
        o["text"] = sent ? json::value(*sent) : json::value(nullptr);
        auto verb = c.text.substr(0, c.text.find(" DateTime="));
        o["description"] = fmt::format(
            "{} DateTime=<the device's local time, ZK-encoded at the whole second it is sent>",
            verb);
    } else {
        o["text"] = c.text;
    }
    o["state"] = std::string{to_string(c.state)};
    o["created_at"] = format_iso(c.created_at, zone);
    o["sent_at"] = optional_time(c.sent_at, zone);
    o["attempts"] = c.attempts;
    if (c.return_code) {
        o["return_code"] = *c.return_code;
        o["return_meaning"] = std::string{protocol::describe_return_code(*c.return_code)};
    } else {
        o["return_code"] = nullptr;
    }
    o["result_at"] = optional_time(c.result_at, zone);
    if (!c.result_command.empty()) {
        o["result_command"] = c.result_command;
    }
    if (!c.result_content.empty()) {
        o["result_content"] = c.result_content;
    }
    if (!c.result_info.empty()) {
        o["result_info"] = c.result_info;
    }
    return o;
}

// The sync options of a sync-time request: ?timeout=&wait= (or the same in a JSON body).
struct sync_options {
    int timeout_s = default_sync_timeout_s;
    bool wait = true;
    std::vector<std::string> ids; // batch only
};

input_result<sync_options> read_sync_options(const query_params& params, std::string_view body,
                                             bool batch)
{
    sync_options options;
    auto parsed = parse_json_object(body, true);
    if (!parsed) {
        return parsed.error;
    }
    const auto& object = *parsed.value;
    if (auto unknown = batch ? reject_unknown_fields(object, {"ids", "timeout", "wait"})
                             : reject_unknown_fields(object, {"timeout", "wait"})) {
        return *unknown;
    }
    if (batch) {
        if (const auto* ids = object.if_contains("ids")) {
            const auto* array = ids->if_array();
            if (array == nullptr) {
                return input_error{"ids", "must be an array of device ids"};
            }
            for (const auto& item : *array) {
                if (!item.is_string()) {
                    return input_error{"ids", "must be an array of device ids (strings)"};
                }
                options.ids.emplace_back(item.as_string());
            }
        }
    }
    auto timeout = optional_integer(object, "timeout");
    if (!timeout) {
        return timeout.error;
    }
    auto wait = optional_bool(object, "wait");
    if (!wait) {
        return wait.error;
    }
    // Plain values (not optionals): g++ 12 misreports copies of optional<long long> as
    // maybe-uninitialized here.
    long long timeout_value = timeout.value->value_or(default_sync_timeout_s);
    bool wait_value = wait.value->value_or(true);
    if (const auto* text = find_param(params, "timeout")) {
        auto parsed_timeout = parse_number(*text);
        if (!parsed_timeout) {
            return input_error{"timeout", "must be a whole number of seconds"};
        }
        timeout_value = *parsed_timeout;
    }
    if (const auto* text = find_param(params, "wait")) {
        auto parsed_wait = parse_flag(*text);
        if (!parsed_wait) {
            return input_error{"wait", "must be true or false"};
        }
        wait_value = *parsed_wait;
    }
    if (timeout_value < 1 || timeout_value > max_sync_timeout_s) {
        return input_error{"timeout",
                           fmt::format("must be from 1 to {} seconds", max_sync_timeout_s)};
    }
    options.timeout_s = static_cast<int>(timeout_value);
    options.wait = wait_value;
    return options;
}

const std::vector<std::string_view> device_suffixes{"sync-time", "time",    "ping",
                                                    "commands",  "approve", "drift"};

// Whether an alias can name a device in a URL path without quoting or clashing with a route.
bool valid_alias(std::string_view alias)
{
    if (alias.empty() || alias.size() > 64 || alias == "sync-time") {
        return false;
    }
    return std::all_of(alias.begin(), alias.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

http_response method_not_allowed(std::string_view allow)
{
    auto reply = error_reply(405, fmt::format("method not allowed; use {}", allow));
    reply.headers.emplace_back("Allow", std::string{allow});
    return reply;
}

} // namespace

boost::asio::awaitable<http_response> admin_api::impl::route(const http_request& request)
{
    auto parsed = boost::urls::parse_origin_form(request.target);
    if (!parsed) {
        co_return error_reply(400, "malformed request target");
    }
    std::vector<std::string> segments;
    for (auto segment : parsed->segments()) {
        segments.emplace_back(segment);
    }
    query_params params;
    for (auto param : parsed->params()) {
        params.emplace_back(param.key, param.has_value ? std::string{param.value} : std::string{});
    }
    const auto& method = request.method;
    auto only = [&](std::initializer_list<std::string_view> known) {
        return reject_unknown_params(params, known);
    };

    if (segments.size() == 1 && segments[0] == "healthz") {
        if (method != "GET") {
            co_return method_not_allowed("GET");
        }
        co_return co_await healthz();
    }

    // Paths outside the API are 404 before authentication, as for the device port.
    static constexpr std::string_view roots[] = {"devices", "punches", "punches.csv", "metrics"};
    if (segments.empty() ||
        std::find(std::begin(roots), std::end(roots), segments[0]) == std::end(roots)) {
        co_return error_reply(404, fmt::format("not found: {}", parsed->path()));
    }
    bool is_metrics = segments.size() == 1 && segments[0] == "metrics";
    if (!is_metrics || config.metrics_require_token) {
        auto presented = bearer_token(request.authorization);
        auto now = std::chrono::steady_clock::now();
        const auto& address = request.remote_address;
        // Too many failures from this address: refused without looking at the token, so
        // guessing stays slow.
        if (auth_failures.exhausted(address, now)) {
            if (auth_log.allow("locked " + address, now)) {
                log.event("admin_auth",
                          fmt::format("Admin API: too many failed logins from {}; answering 429 "
                                      "(logged once a minute)",
                                      address),
                          {{"remote", address}});
            }
            auto reply = error_reply(429, "too many failed logins from this address; retry later");
            reply.headers.emplace_back("Retry-After", "60");
            co_return reply;
        }
        if (!presented || !token_matches(*presented, tokens)) {
            auth_failures.take(address, now);
            auto failures = ++auth_failure_count;
            if (auth_log.allow("failed " + address, now)) {
                log.event("admin_auth",
                          fmt::format("Admin API: failed login from {} ({}) to {} {}; {} failed "
                                      "logins since start (logged once a minute per address)",
                                      address, presented ? "invalid bearer token" : "no token",
                                      escape_for_log(method), escape_for_log(parsed->path()),
                                      failures),
                          {{"remote", address}});
            }
            auto reply = error_reply(401, presented ? "invalid bearer token"
                                                    : "missing bearer token: send "
                                                      "'Authorization: Bearer <token>'");
            reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"admsd\"");
            co_return reply;
        }
    }
    if (is_metrics) {
        if (method != "GET") {
            co_return method_not_allowed("GET");
        }
        auto [known, online_count] = devices.device_counts(now_instant(), online_window());
        co_return http_response{200,
                                "text/plain; version=0.0.4; charset=utf-8",
                                stats.render(known, online_count),
                                {},
                                {}};
    }

    if (!segments.empty() && segments[0] == "devices") {
        if (segments.size() == 1) {
            if (method != "GET") {
                co_return method_not_allowed("GET");
            }
            if (auto bad = only({})) {
                co_return input_reply(*bad);
            }
            co_return co_await list_devices();
        }
        if (segments.size() == 2 && segments[1] == "sync-time") {
            if (method != "POST") {
                co_return method_not_allowed("POST");
            }
            if (auto bad = only({"timeout", "wait"})) {
                co_return input_reply(*bad);
            }
            co_return co_await sync_many(request, params);
        }
        if (segments.size() > 3 ||
            (segments.size() == 3 && std::find(device_suffixes.begin(), device_suffixes.end(),
                                               segments[2]) == device_suffixes.end())) {
            co_return error_reply(404, fmt::format("not found: {}", parsed->path()));
        }
        const auto& id = segments[1];
        if (segments.size() == 3 && segments[2] == "sync-time") {
            // sync_one looks the device up itself (the batch shares it).
            if (method != "POST") {
                co_return method_not_allowed("POST");
            }
            if (auto bad = only({"timeout", "wait"})) {
                co_return input_reply(*bad);
            }
            auto options = read_sync_options(params, request.body, false);
            if (!options) {
                co_return input_reply(options.error);
            }
            auto result = co_await sync_one(id, options.value->timeout_s, options.value->wait);
            co_return json_reply(result.status, result.body);
        }
        auto device = devices.find_device(id);
        if (!device) {
            co_return error_reply(404, fmt::format("Device not found: {}", id));
        }
        if (segments.size() == 3 && segments[2] == "drift") {
            if (method != "GET") {
                co_return method_not_allowed("GET");
            }
            if (auto bad = only({"from", "to", "after", "limit"})) {
                co_return input_reply(*bad);
            }
            co_return co_await device_drift(*device, params);
        }
        if (auto bad = only({})) {
            co_return input_reply(*bad);
        }
        if (segments.size() == 2) {
            if (method == "GET") {
                co_return co_await get_device(*device);
            }
            if (method == "PATCH") {
                co_return co_await patch_device(*device, request);
            }
            co_return method_not_allowed("GET, PATCH");
        }
        const auto& suffix = segments[2];
        if (suffix == "time") {
            if (method != "GET") {
                co_return method_not_allowed("GET");
            }
            co_return co_await device_time(*device);
        }
        if (suffix == "ping") {
            if (method != "GET") {
                co_return method_not_allowed("GET");
            }
            co_return ping(*device);
        }
        if (suffix == "commands") {
            if (method == "GET") {
                co_return co_await list_commands(*device);
            }
            if (method == "POST") {
                co_return co_await post_command(*device, request);
            }
            co_return method_not_allowed("GET, POST");
        }
        // approve
        if (method != "POST") {
            co_return method_not_allowed("POST");
        }
        device_patch patch;
        patch.approved = true;
        auto updated = co_await devices.update_device(device->record.serial_number, patch);
        if (!updated.device) {
            co_return error_reply(updated.status, updated.error);
        }
        co_return json_reply(200,
                             json::object{
                                 {"success", true},
                                 {"message", fmt::format("[{}] Device approved.", id_of(*device))},
                                 {"data", device_json(*updated.device, now_instant())},
                             });
    }

    if (segments.size() == 1 && (segments[0] == "punches" || segments[0] == "punches.csv")) {
        if (method != "GET") {
            co_return method_not_allowed("GET");
        }
        if (auto bad = only({"device", "pin", "from", "to", "after", "limit", "quarantined"})) {
            co_return input_reply(*bad);
        }
        co_return co_await punches(params, segments[0] == "punches.csv");
    }
    co_return error_reply(404, fmt::format("not found: {}", parsed->path()));
}

boost::asio::awaitable<http_response> admin_api::impl::healthz()
{
    auto checked = co_await reader.run([this] { return store.check(); });
    bool writes_ok = devices.storage_healthy();
    bool healthy = checked && writes_ok;
    json::object body{
        {"status", healthy ? "ok" : "unhealthy"},
        {"database", checked ? std::string{"ok"} : checked.error.message},
        {"writes", writes_ok ? std::string{"ok"} : "failing: " + devices.storage_error_message()},
        {"devices", devices.device_counts(now_instant(), online_window()).first},
        {"version", version},
    };
    co_return json_reply(healthy ? 200 : 503, body);
}

boost::asio::awaitable<http_response> admin_api::impl::list_devices()
{
    auto now = now_instant();
    json::array data;
    for (const auto& d : devices.devices()) {
        data.push_back(device_json(d, now));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> admin_api::impl::get_device(const device_snapshot& d)
{
    const auto& sn = d.record.serial_number;
    auto commands = co_await reader.run([&] { return store.list_commands(sn, 50); });
    if (!commands) {
        co_return error_reply(503, "storage unavailable: " + commands.error.message);
    }
    auto zone = zone_of(d);
    auto o = device_json(d, now_instant());
    o["zone_source"] = d.zone_source;
    json::object options;
    for (const auto& kv : d.record.options) {
        options[kv.key] = kv.value;
    }
    o["options"] = std::move(options);
    if (auto info = protocol::parse_info(d.record.info)) {
        o["info"] = json::object{
            {"raw", d.record.info},
            {"firmware", info->firmware},
            {"users", info->user_count ? json::value(*info->user_count) : json::value(nullptr)},
            {"fingerprints", info->fingerprint_count ? json::value(*info->fingerprint_count)
                                                     : json::value(nullptr)},
            {"attlogs",
             info->attlog_count ? json::value(*info->attlog_count) : json::value(nullptr)},
            {"ip_address", info->ip_address},
            {"received_at", optional_time(d.record.info_at, zone)},
        };
    } else {
        o["info"] = nullptr;
    }
    auto stamp = [](const std::optional<std::string>& s) {
        return s ? json::value(*s) : json::value(nullptr);
    };
    o["stamps"] = json::object{{"attlog", stamp(d.record.attlog_stamp)},
                               {"operlog", stamp(d.record.operlog_stamp)},
                               {"attphoto", stamp(d.record.attphoto_stamp)}};
    json::array pending;
    std::vector<const queued_command*> syncs;
    for (const auto& c : *commands.value) {
        if (c.state == command_state::queued || c.state == command_state::sent) {
            pending.push_back(command_json(c, zone));
        }
        if (is_time_sync(c)) {
            syncs.push_back(&c);
        }
    }
    json::array time_syncs; // newest first
    for (auto it = syncs.rbegin(); it != syncs.rend() && time_syncs.size() < listed_time_syncs;
         ++it) {
        time_syncs.push_back(command_json(**it, zone));
    }
    o["pending_commands"] = std::move(pending);
    o["time_syncs"] = std::move(time_syncs);
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(o)}});
}

boost::asio::awaitable<http_response> admin_api::impl::patch_device(const device_snapshot& d,
                                                                    const http_request& request)
{
    auto parsed = parse_json_object(request.body, false);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    const auto& body = *parsed.value;
    if (auto unknown = reject_unknown_fields(
            body, {"alias", "zone", "time_dialect", "sync_at", "sync_interval", "approved"})) {
        co_return input_reply(*unknown);
    }
    // Each field: a string sets it, null clears the API's value (back to the config file's or
    // the default).
    auto text_or_null = [&](std::string_view field) -> input_result<std::optional<std::string>> {
        const auto* v = body.if_contains(field);
        if (v == nullptr || v->is_null()) {
            return std::optional<std::string>{};
        }
        if (!v->is_string()) {
            return input_error{std::string{field}, "must be a string or null"};
        }
        return std::optional<std::string>{std::string{v->as_string()}};
    };
    device_patch patch;
    if (body.contains("alias")) {
        auto alias = text_or_null("alias");
        if (!alias) {
            co_return input_reply(alias.error);
        }
        if (*alias.value && !valid_alias(**alias.value)) {
            co_return input_reply(
                {"alias",
                 "must be 1 to 64 letters, digits, '-', '_' or '.' (and not 'sync-time')"});
        }
        patch.alias = *alias.value;
    }
    if (body.contains("zone")) {
        auto zone = text_or_null("zone");
        if (!zone) {
            co_return input_reply(zone.error);
        }
        if (*zone.value) {
            if (auto found = tz::locate_zone(**zone.value); !found) {
                co_return input_reply({"zone", found.error});
            }
        }
        patch.time_zone = *zone.value;
    }
    if (body.contains("time_dialect")) {
        auto dialect = text_or_null("time_dialect");
        if (!dialect) {
            co_return input_reply(dialect.error);
        }
        std::optional<time_dialect> value;
        if (*dialect.value) {
            if (**dialect.value == "att") {
                value = time_dialect::att;
            } else if (**dialect.value == "att-singular") {
                value = time_dialect::att_singular;
            } else {
                co_return input_reply({"time_dialect", "must be att, att-singular or null"});
            }
        }
        patch.dialect = value;
    }
    if (body.contains("sync_at")) {
        auto at = text_or_null("sync_at");
        if (!at) {
            co_return input_reply(at.error);
        }
        std::optional<std::chrono::minutes> value;
        if (*at.value) {
            value = parse_time_of_day(**at.value);
            if (!value) {
                co_return input_reply({"sync_at", "must be HH:MM (local time) or null"});
            }
        }
        patch.sync_at = value;
    }
    if (body.contains("sync_interval")) {
        auto interval = text_or_null("sync_interval");
        if (!interval) {
            co_return input_reply(interval.error);
        }
        std::optional<std::chrono::minutes> value;
        if (*interval.value) {
            if (**interval.value == "off") {
                value = std::chrono::minutes{0};
            } else {
                auto d = parse_duration(**interval.value);
                if (!d || *d < std::chrono::minutes{1}) {
                    co_return input_reply(
                        {"sync_interval",
                         "must be a duration of at least 1m (e.g. 6h), off or null"});
                }
                value = std::chrono::duration_cast<std::chrono::minutes>(*d);
            }
        }
        patch.sync_interval = value;
    }
    if (body.contains("approved")) {
        auto approved = optional_bool(body, "approved");
        if (!approved) {
            co_return input_reply(approved.error);
        }
        patch.approved = *approved.value;
    }
    auto updated = co_await devices.update_device(d.record.serial_number, patch);
    if (!updated.device) {
        co_return error_reply(updated.status, updated.error);
    }
    co_return json_reply(200, json::object{{"success", true},
                                           {"data", device_json(*updated.device, now_instant())}});
}

boost::asio::awaitable<sync_result> admin_api::impl::sync_one(std::string requested_id,
                                                              int timeout_s, bool wait)
{
    auto fail = [](unsigned status, std::string error) {
        return sync_result{status, json::object{{"success", false}, {"error", std::move(error)}}};
    };
    auto device = devices.find_device(requested_id);
    if (!device) {
        co_return fail(404, fmt::format("Device not found: {}", requested_id));
    }
    auto id = id_of(*device);
    const auto& sn = device->record.serial_number;
    if (!device->record.approved) {
        co_return fail(409, fmt::format("[{}] Device is not approved: POST /devices/{}/approve "
                                        "first (it gets no commands until then)",
                                        id, id));
    }
    auto queued = co_await devices.request_time_sync(sn, "on demand");
    if (!queued) {
        co_return fail(503, fmt::format("[{}] Storage unavailable: {}", id, queued.error.message));
    }
    auto command_id = queued.value->id;
    if (!wait) {
        co_return sync_result{202,
                              json::object{{"success", true},
                                           {"message", fmt::format("[{}] Time sync queued.", id)},
                                           {"command_id", command_id},
                                           {"command_state", "queued"}}};
    }
    auto zone = zone_of(*device);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{timeout_s};
    for (;;) {
        // Subscribe before reading the state, so a result recorded in between wakes us.
        auto ticket = waiters.subscribe(command_waiters::key(sn, command_id));
        auto found = co_await reader.run([&] { return store.find_command(sn, command_id); });
        if (!found) {
            co_return fail(503,
                           fmt::format("[{}] Storage unavailable: {}", id, found.error.message));
        }
        if (!*found.value) {
            co_return fail(500, fmt::format("[{}] Time sync command {} disappeared from the queue",
                                            id, command_id));
        }
        const auto& command = **found.value;
        switch (command.state) {
        case command_state::done:
            co_return sync_result{200, json::object{
                                           {"success", true},
                                           {"message", fmt::format("[{}] Time synchronized.", id)},
                                           {"device_time", format_iso(now_instant(), zone, true)},
                                           {"command_id", command_id},
                                           {"confirmed_at", optional_time(command.result_at, zone)},
                                       }};
        case command_state::failed: {
            int code = command.return_code.value_or(-1);
            auto result = fail(500, fmt::format("[{}] Device refused the time sync: Return={} ({})",
                                                id, code, protocol::describe_return_code(code)));
            result.body["command_id"] = command_id;
            result.body["return_code"] = code;
            co_return result;
        }
        case command_state::expired:
        case command_state::unsendable: {
            auto result =
                fail(500, fmt::format("[{}] The time sync {} (sent {} times, no result)", id,
                                      command.state == command_state::expired ? "expired"
                                                                              : "can never be sent",
                                      command.attempts));
            result.body["command_id"] = command_id;
            co_return result;
        }
        case command_state::queued:
        case command_state::sent:
            break;
        }
        if (stopping) {
            auto result =
                fail(503, fmt::format("[{}] Server stopping; the time sync stays queued", id));
            result.body["command_id"] = command_id;
            co_return result;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            stats.time_sync(sync_outcome::timed_out);
            auto seen = devices.find_device(sn);
            auto since = seen ? std::chrono::duration_cast<std::chrono::seconds>(
                                    now_instant() - seen->record.last_seen)
                                    .count()
                              : -1;
            auto result = fail(
                504,
                fmt::format("[{}] Device did not confirm the time sync within {} s (command "
                            "{}, {}; last request {} s ago); it stays queued",
                            id, timeout_s, command_id,
                            command.state == command_state::sent ? "sent" : "not yet sent", since));
            result.body["command_id"] = command_id;
            result.body["command_state"] = std::string{to_string(command.state)};
            co_return result;
        }
        co_await waiters.wait(ticket, deadline);
    }
}

boost::asio::awaitable<http_response> admin_api::impl::sync_many(const http_request& request,
                                                                 const query_params& params)
{
    auto options = read_sync_options(params, request.body, true);
    if (!options) {
        co_return input_reply(options.error);
    }
    auto ids = options.value->ids;
    if (ids.empty()) {
        // "Every device": the approved ones (the others receive no commands until approved).
        for (const auto& d : devices.devices()) {
            if (d.record.approved) {
                ids.push_back(id_of(d));
            }
        }
    }
    // Every device at once: the slowest one bounds the wait.
    auto executor = co_await net::this_coro::executor;
    using operation = decltype(net::co_spawn(executor, sync_one({}, 0, false), net::deferred));
    std::vector<operation> operations;
    operations.reserve(ids.size());
    for (const auto& id : ids) {
        operations.push_back(net::co_spawn(
            executor, sync_one(id, options.value->timeout_s, options.value->wait), net::deferred));
    }
    std::vector<sync_result> results;
    if (!operations.empty()) {
        auto [order, errors, values] =
            co_await net::experimental::make_parallel_group(std::move(operations))
                .async_wait(net::experimental::wait_for_all(), net::use_awaitable);
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (errors[i]) {
                values[i] =
                    sync_result{500, json::object{{"success", false}, {"error", "internal error"}}};
            }
        }
        results = std::move(values);
    }
    json::array out;
    bool all_ok = true;
    std::size_t succeeded = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        auto& body = results[i].body;
        bool ok = results[i].status == 200 || results[i].status == 202;
        all_ok = all_ok && ok;
        succeeded += ok ? 1 : 0;
        json::object item{{"id", ids[i]}, {"status", results[i].status}};
        for (auto& [key, value] : body) {
            item[key] = value;
        }
        out.push_back(std::move(item));
    }
    co_return json_reply(200, json::object{{"success", all_ok},
                                           {"succeeded", succeeded},
                                           {"failed", results.size() - succeeded},
                                           {"results", std::move(out)}});
}

boost::asio::awaitable<http_response> admin_api::impl::device_time(const device_snapshot& d)
{
    const auto& sn = d.record.serial_number;
    auto now = now_instant();
    auto commands = co_await reader.run([&] { return store.list_commands(sn, 50); });
    if (!commands) {
        co_return error_reply(503, "storage unavailable: " + commands.error.message);
    }
    clock_evidence evidence;
    for (const auto& c : *commands.value) {
        if (is_time_sync(c) && c.state == command_state::done && c.sent_at && c.result_at &&
            (!evidence.sync_confirmed_at || *c.result_at > *evidence.sync_confirmed_at)) {
            evidence.sync_sent_at = c.sent_at;
            evidence.sync_confirmed_at = c.result_at;
        }
    }
    clock_estimate_params params;
    punch_filter filter;
    filter.serial_numbers = {sn};
    filter.received_from =
        now - std::chrono::duration_cast<std::chrono::milliseconds>(params.window);
    filter.include_quarantined = true; // evidence about the clock, whatever their admission
    filter.newest_first = true;
    filter.limit = params.max_samples;
    auto rows = co_await reader.run([&] { return store.query_punches(filter); });
    if (!rows) {
        co_return error_reply(503, "storage unavailable: " + rows.error.message);
    }
    for (const auto& p : *rows.value) {
        if (p.utc) {
            evidence.punches.push_back({*p.utc, p.received_at});
        }
    }
    auto estimate = estimate_device_clock(evidence, now, params);
    auto zone = zone_of(d);
    json::object o{
        {"success", true},
        {"id", id_of(d)},
        {"sn", sn},
        {"zone", d.zone_name},
        {"server_time", format_iso(now, zone, true)},
        {"source", std::string{to_string(estimate.source)}},
    };
    if (estimate.offset) {
        o["device_time"] = format_iso(now + *estimate.offset, zone, true);
        o["offset_seconds"] = std::chrono::round<std::chrono::seconds>(*estimate.offset).count();
        o["offset_ms"] = estimate.offset->count();
        o["uncertainty_seconds"] =
            std::chrono::ceil<std::chrono::seconds>(estimate.uncertainty).count();
        o["uncertainty_ms"] = estimate.uncertainty.count();
    } else {
        o["device_time"] = nullptr;
        o["offset_seconds"] = nullptr;
        o["offset_ms"] = nullptr;
        o["uncertainty_seconds"] = nullptr;
        o["uncertainty_ms"] = nullptr;
    }
    o["measured_at"] = optional_time(estimate.measured_at, zone);
    o["samples"] = estimate.samples_used;
    o["note"] = estimate.note;
    co_return json_reply(200, o);
}

boost::asio::awaitable<http_response> admin_api::impl::device_drift(const device_snapshot& d,
                                                                    const query_params& params)
{
    const auto& sn = d.record.serial_number;
    auto zone = zone_of(d);
    clock_offset_query query;
    query.serial_number = sn;
    query.limit = default_drift_limit;
    for (const auto& [key, value] : params) {
        if (key == "from" || key == "to") {
            // An instant, or a wall-clock time in the device's zone (earliest reading).
            auto bound = parse_time_bound(value, key == "to");
            if (!bound.bound) {
                co_return input_reply({key, bound.error});
            }
            std::optional<instant> at;
            if (bound.bound->utc) {
                at = instant{*bound.bound->utc};
            } else if (auto local = protocol::parse_civil_time(bound.bound->local.value_or(""))) {
                if (auto utc = zone.to_utc(
                        *local, {tz::gap_policy::transition, tz::overlap_policy::earliest})) {
                    at = instant{*utc};
                }
            }
            if (!at) {
                co_return input_reply({key, "not a time in the device's zone"});
            }
            (key == "from" ? query.from : query.to) = at;
        } else if (key == "after") {
            auto after = parse_number(value);
            if (!after || *after < 0) {
                co_return input_reply({"after", "must be a cursor from a previous page's next"});
            }
            query.after_id = *after;
        } else if (key == "limit") {
            auto limit = parse_number(value);
            if (!limit || *limit < 1 || *limit > static_cast<long long>(max_drift_limit)) {
                co_return input_reply(
                    {"limit", fmt::format("must be from 1 to {}", max_drift_limit)});
            }
            query.limit = static_cast<std::size_t>(*limit);
        }
    }
    // One row more than asked tells whether another page exists.
    auto probe = query;
    probe.limit = query.limit + 1;
    auto rows = co_await reader.run([&] { return store.list_clock_offsets(probe); });
    if (!rows) {
        co_return error_reply(503, "storage unavailable: " + rows.error.message);
    }
    bool more = rows.value->size() > query.limit;
    if (more) {
        rows.value->pop_back();
    }
    json::array data;
    for (const auto& row : *rows.value) {
        const auto& p = row.point;
        data.push_back(json::object{
            {"id", row.id},
            {"time", format_iso(p.measured_at, zone, true)},
            {"offset_ms", p.offset_ms},
            {"offset_seconds", static_cast<double>(p.offset_ms) / 1000.0},
            {"uncertainty_ms", p.uncertainty_ms},
            {"source", p.source},
        });
    }
    const auto& watch = devices.drift_settings();
    auto threshold_s = std::chrono::duration_cast<std::chrono::seconds>(watch.threshold).count();
    json::object current{{"source", "unknown"},
                         {"offset_ms", nullptr},
                         {"uncertainty_ms", nullptr},
                         {"measured_at", nullptr}};
    bool alerting = false;
    if (auto status = devices.drift_of(sn)) {
        alerting = status->alerting;
        const auto& e = status->estimate;
        current["source"] = std::string{to_string(e.source)};
        if (e.offset) {
            current["offset_ms"] = e.offset->count();
            current["uncertainty_ms"] = e.uncertainty.count();
        }
        current["measured_at"] = optional_time(e.measured_at, zone);
    }
    auto next = rows.value->empty() ? query.after_id : rows.value->back().id;
    co_return json_reply(200, json::object{{"success", true},
                                           {"id", id_of(d)},
                                           {"sn", sn},
                                           {"zone", d.zone_name},
                                           {"watch", threshold_s > 0},
                                           {"threshold_seconds", threshold_s},
                                           {"alerting", alerting},
                                           {"current", std::move(current)},
                                           {"data", std::move(data)},
                                           {"count", rows.value->size()},
                                           {"next", next},
                                           {"has_more", more}});
}

http_response admin_api::impl::ping(const device_snapshot& d) const
{
    auto now = now_instant();
    auto zone = zone_of(d);
    auto since = std::chrono::duration_cast<std::chrono::seconds>(now - d.record.last_seen).count();
    bool is_online = online(d, now);
    return json_reply(
        200,
        json::object{
            {"success", true},
            {"id", id_of(d)},
            {"sn", d.record.serial_number},
            {"online", is_online},
            {"last_seen", format_iso(d.record.last_seen, zone)},
            {"seconds_since", since},
            {"poll_interval", config.poll_delay},
            {"remote_address", d.record.remote_address},
            {"message", fmt::format("[{}] {} (last request {} s ago, polls every {} s)", id_of(d),
                                    is_online ? "Online" : "Offline", since, config.poll_delay)},
        });
}

boost::asio::awaitable<http_response> admin_api::impl::post_command(const device_snapshot& d,
                                                                    const http_request& request)
{
    auto parsed = parse_json_object(request.body, false);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    auto command = parse_command_request(*parsed.value);
    if (!command) {
        co_return input_reply(command.error);
    }
    auto id = id_of(d);
    if (!d.record.approved) {
        co_return error_reply(409, fmt::format("[{}] Device is not approved: POST "
                                               "/devices/{}/approve first",
                                               id, id));
    }
    auto queued = co_await devices.queue_command(d.record.serial_number, command.value->text,
                                                 "admin: " + command.value->name);
    if (!queued) {
        co_return error_reply(503, "storage unavailable: " + queued.error.message);
    }
    co_return json_reply(
        202, json::object{
                 {"success", true},
                 {"message", fmt::format("[{}] Command queued for the device's next poll.", id)},
                 {"command_id", *queued.value},
                 {"command", command.value->name},
                 {"text", command.value->text},
                 {"status", "queued"}});
}

boost::asio::awaitable<http_response> admin_api::impl::list_commands(const device_snapshot& d)
{
    auto commands =
        co_await reader.run([&] { return store.list_commands(d.record.serial_number, 200); });
    if (!commands) {
        co_return error_reply(503, "storage unavailable: " + commands.error.message);
    }
    auto zone = zone_of(d);
    json::array data;
    for (const auto& c : *commands.value) {
        data.push_back(command_json(c, zone));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> admin_api::impl::punches(const query_params& params, bool csv)
{
    punch_filter filter;
    filter.limit = default_punch_limit;
    std::optional<std::size_t> csv_limit;
    for (const auto& [key, value] : params) {
        if (key == "device") {
            // Repeatable, or comma-separated; each an id (alias or SN).
            std::size_t start = 0;
            while (start <= value.size()) {
                auto comma = std::min(value.find(',', start), value.size());
                auto id = value.substr(start, comma - start);
                auto device = devices.find_device(id);
                if (!device) {
                    co_return error_reply(404, fmt::format("Device not found: {}", id));
                }
                filter.serial_numbers.push_back(device->record.serial_number);
                start = comma + 1;
            }
        } else if (key == "pin") {
            filter.pin = value;
        } else if (key == "from" || key == "to") {
            auto bound = parse_time_bound(value, key == "to");
            if (!bound.bound) {
                co_return input_reply({key, bound.error});
            }
            if (key == "from") {
                filter.local_from = bound.bound->local;
                filter.utc_from = bound.bound->utc;
            } else {
                filter.local_to = bound.bound->local;
                filter.utc_to = bound.bound->utc;
            }
        } else if (key == "after") {
            auto after = parse_number(value);
            if (!after || *after < 0) {
                co_return input_reply({"after", "must be a cursor from a previous page's next"});
            }
            filter.after_id = *after;
        } else if (key == "limit") {
            auto limit = parse_number(value);
            if (!limit || *limit < 1 ||
                (!csv && *limit > static_cast<long long>(max_punch_limit))) {
                co_return input_reply(
                    {"limit", fmt::format("must be from 1 to {}", csv ? "any size" : "10000")});
            }
            filter.limit = static_cast<std::size_t>(*limit);
            csv_limit = filter.limit;
        } else if (key == "quarantined") {
            auto flag = parse_flag(value);
            if (!flag) {
                co_return input_reply({"quarantined", "must be true or false"});
            }
            filter.include_quarantined = *flag;
        }
    }

    // The API id and zone of every device, for the rows.
    auto lookup = std::make_shared<std::map<std::string, punch_device, std::less<>>>();
    for (const auto& d : devices.devices()) {
        lookup->emplace(d.record.serial_number, punch_device{id_of(d), zone_of(d)});
    }
    auto device_of = [lookup](const stored_punch& p) -> punch_device {
        if (auto it = lookup->find(p.serial_number); it != lookup->end()) {
            return it->second;
        }
        return {p.serial_number, *tz::locate_zone("UTC").value};
    };

    if (!csv) {
        // One row more than asked tells whether another page exists (has_more is then exact).
        auto probe = filter;
        probe.limit = filter.limit + 1;
        auto rows = co_await reader.run([&] { return store.query_punches(probe); });
        if (!rows) {
            co_return error_reply(503, "storage unavailable: " + rows.error.message);
        }
        bool more = rows.value->size() > filter.limit;
        if (more) {
            rows.value->pop_back();
        }
        json::array data;
        for (const auto& p : *rows.value) {
            data.push_back(punch_json(p, device_of(p)));
        }
        auto next = rows.value->empty() ? filter.after_id : rows.value->back().id;
        co_return json_reply(200, json::object{{"success", true},
                                               {"data", std::move(data)},
                                               {"count", rows.value->size()},
                                               {"next", next},
                                               {"has_more", more}});
    }

    // CSV: pages of csv_page_rows up to the last punch stored now (a stable end), streamed.
    auto last = co_await reader.run([&] { return store.last_punch_id(); });
    if (!last) {
        co_return error_reply(503, "storage unavailable: " + last.error.message);
    }
    struct export_state {
        punch_filter filter;
        std::optional<std::size_t> remaining;
        bool header_sent = false;
        bool done = false;
    };
    auto state = std::make_shared<export_state>();
    state->filter = filter;
    state->filter.up_to_id = *last.value;
    state->remaining = csv_limit;
    http_response reply{200, "text/csv; charset=utf-8", {}, {}, {}};
    reply.headers.emplace_back("Content-Disposition", "attachment; filename=\"punches.csv\"");
    reply.stream = [this, state,
                    device_of]() -> boost::asio::awaitable<std::optional<std::string>> {
        std::string chunk;
        if (!state->header_sent) {
            state->header_sent = true;
            chunk = csv_header();
        }
        if (state->done) {
            co_return chunk;
        }
        auto page = state->filter;
        page.limit = std::min(csv_page_rows, state->remaining.value_or(csv_page_rows));
        auto rows = co_await reader.run([&] { return store.query_punches(page); });
        if (!rows) {
            co_return std::nullopt;
        }
        for (const auto& p : *rows.value) {
            chunk += csv_row(p, device_of(p));
        }
        if (state->remaining) {
            *state->remaining -= rows.value->size();
        }
        if (rows.value->size() < page.limit || state->remaining == std::size_t{0}) {
            state->done = true;
        } else {
            state->filter.after_id = rows.value->back().id;
        }
        co_return chunk;
    };
    co_return reply;
}

} // namespace adms::server
