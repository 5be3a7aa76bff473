// End-to-end: the tylink time service over MQTT, with a real mosquitto broker on a loopback port
// and real libmosquitto clients playing the devices.
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <condition_variable>
#include <csignal>
#include <fcntl.h>
#include <mosquitto.h>
#include <mutex>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono;
using namespace adms;
using adms::test::eventually;
using adms::test::round_trip;
using adms::test::running_server;
using adms::test::temp_dir;
using adms::test::test_token;
namespace json = boost::json;

extern char** environ;

namespace {

// A loopback port nobody listens on: bound to port 0, then closed for the broker to take.
unsigned short free_port()
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

// Whether something accepts TCP connections on 127.0.0.1:`port`.
bool accepts(unsigned short port)
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
}

// Runs a program to its end; its exit status (-1 when it could not start).
int run(std::vector<std::string> args)
{
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
        return -1;
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A real mosquitto broker on 127.0.0.1:`port`, stopped at scope exit (also when a check fails).
struct broker {
    std::filesystem::path dir;
    unsigned short port;
    std::string extra_config;
    pid_t pid = -1;

    broker(std::filesystem::path d, unsigned short p, std::string extra = {})
        : dir{std::move(d)}, port{p}, extra_config{std::move(extra)}
    {
        start();
    }
    ~broker() { stop(); }
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    void start()
    {
        auto config = dir / fmt::format("mosquitto-{}.conf", port);
        {
            std::ofstream out{config};
            // Run as whoever runs the test (as root, mosquitto would switch to its own user).
            const auto* user = ::getpwuid(::getuid());
            out << fmt::format("listener {} 127.0.0.1\npersistence false\nuser {}\n{}\n", port,
                               user != nullptr ? user->pw_name : "root",
                               extra_config.empty() ? "allow_anonymous true" : extra_config);
        }
        auto log = (dir / fmt::format("mosquitto-{}.log", port)).string();
        posix_spawn_file_actions_t files;
        ::posix_spawn_file_actions_init(&files);
        ::posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(),
                                           O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
        std::string program = ADMS_MOSQUITTO;
        std::string flag = "-c";
        std::string path = config.string();
        std::array<char*, 4> argv{program.data(), flag.data(), path.data(), nullptr};
        int spawned = ::posix_spawn(&pid, program.c_str(), &files, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&files);
        REQUIRE(spawned == 0);
        if (!eventually([&] { return accepts(port); })) {
            stop();
            FAIL("mosquitto did not listen on port " << port);
        }
    }

    // SIGTERM, then SIGKILL if it has not exited within 5 s; always reaped.
    void stop()
    {
        if (pid <= 0) {
            return;
        }
        ::kill(pid, SIGTERM);
        int status = 0;
        bool exited =
            eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, seconds{5});
        if (!exited) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
        }
        pid = -1;
    }
};

// One received MQTT message.
struct message {
    std::string topic;
    std::string payload;
    bool retained = false;
};

// A device (or an observer) on the broker: libmosquitto with its own network thread, keeping
// every message it receives.
class mqtt_client {
  public:
    mqtt_client(unsigned short port, const std::string& id, const std::string& user = {},
                const std::string& password = {})
    {
        mosquitto_lib_init();
        client_ = mosquitto_new(id.c_str(), true, this);
        REQUIRE(client_ != nullptr);
        if (!user.empty()) {
            mosquitto_username_pw_set(client_, user.c_str(), password.c_str());
        }
        mosquitto_message_callback_set(
            client_, [](mosquitto*, void* self, const mosquitto_message* m) {
                auto& c = *static_cast<mqtt_client*>(self);
                std::lock_guard lock{c.mutex_};
                c.messages_.push_back({m->topic,
                                       std::string{static_cast<const char*>(m->payload),
                                                   static_cast<std::size_t>(m->payloadlen)},
                                       m->retain});
                c.changed_.notify_all();
            });
        mosquitto_subscribe_callback_set(client_,
                                         [](mosquitto*, void* self, int mid, int, const int*) {
                                             auto& c = *static_cast<mqtt_client*>(self);
                                             std::lock_guard lock{c.mutex_};
                                             c.acknowledged_.push_back(mid);
                                             c.changed_.notify_all();
                                         });
        REQUIRE(mosquitto_connect(client_, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS);
        REQUIRE(mosquitto_loop_start(client_) == MOSQ_ERR_SUCCESS);
    }
    ~mqtt_client()
    {
        mosquitto_disconnect(client_);
        mosquitto_loop_stop(client_, false);
        mosquitto_destroy(client_);
    }
    mqtt_client(const mqtt_client&) = delete;
    mqtt_client& operator=(const mqtt_client&) = delete;

    // Subscribes at QoS 0 and waits for the broker's SUBACK.
    void subscribe(const std::string& filter)
    {
        int mid = 0;
        REQUIRE(mosquitto_subscribe(client_, &mid, filter.c_str(), 0) == MOSQ_ERR_SUCCESS);
        std::unique_lock lock{mutex_};
        REQUIRE(changed_.wait_for(lock, seconds{10}, [&] {
            return std::find(acknowledged_.begin(), acknowledged_.end(), mid) !=
                   acknowledged_.end();
        }));
    }

    void publish(const std::string& topic, const std::string& payload, bool retain = false)
    {
        REQUIRE(mosquitto_publish(client_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                  payload.data(), 0, retain) == MOSQ_ERR_SUCCESS);
    }

    // The first message on `topic` whose JSON msgId is `msg_id`, waiting at most `timeout`.
    std::optional<json::object> answer(const std::string& topic, const std::string& msg_id,
                                       milliseconds timeout = seconds{10})
    {
        std::unique_lock lock{mutex_};
        std::optional<json::object> found;
        changed_.wait_for(lock, timeout, [&] {
            for (const auto& m : messages_) {
                boost::system::error_code ec;
                auto value = json::parse(m.payload, ec);
                if (m.topic == topic && !ec && value.is_object() &&
                    value.as_object().contains("msgId") &&
                    value.as_object().at("msgId") == msg_id.c_str()) {
                    found = value.as_object();
                    return true;
                }
            }
            return false;
        });
        return found;
    }

    std::vector<message> messages()
    {
        std::lock_guard lock{mutex_};
        return messages_;
    }

  private:
    mosquitto* client_ = nullptr;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<message> messages_;
    std::vector<int> acknowledged_;
};

std::int64_t now_ms()
{
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string request_topic(const std::string& device)
{
    return "tylink/" + device + "/ext/time/request";
}

std::string response_topic(const std::string& device)
{
    return "tylink/" + device + "/ext/time/response";
}

std::size_t occurrences(const std::string& text, const std::string& needle)
{
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++count;
    }
    return count;
}

server::settings mqtt_settings(unsigned short broker_port)
{
    server::settings s;
    s.time_zone = "Asia/Riyadh";
    s.mqtt_url = fmt::format("mqtt://127.0.0.1:{}", broker_port);
    s.mqtt_client_id = fmt::format("admsd-e2e-{}-{}", ::getpid(), broker_port);
    return s;
}

// Waits until the server's log has said "MQTT connected" `times` times.
bool connected(const running_server& server, std::size_t times, milliseconds timeout = seconds{20})
{
    return eventually(
        [&] { return occurrences(server.log_text(), "MQTT connected to 127.0.0.1:") >= times; },
        timeout);
}

// An NTP request answered through the broker, checked against the test's own clock.
void check_ntp(mqtt_client& device, const std::string& id, const std::string& msg_id)
{
    auto before = now_ms();
    device.publish(request_topic(id),
                   fmt::format(R"({{"msgId":"{}","time":{},"data":{{"bizType":"NTP","dst":{}}}}})",
                               msg_id, before, before));
    auto reply = device.answer(response_topic(id), msg_id);
    auto after = now_ms();
    REQUIRE(reply);
    CHECK(reply->at("code") == 0);
    const auto& data = reply->at("data").as_object();
    CHECK(data.at("bizType") == "NTP");
    CHECK(data.at("dst") == before);
    auto srt = data.at("srt").as_int64();
    auto sst = data.at("sst").as_int64();
    CHECK(before <= srt);
    CHECK(srt <= sst);
    CHECK(sst <= after);
}

} // namespace

TEST_CASE("Time requests over a real MQTT broker are answered, and again after it restarts",
          "[e2e][mqtt]")
{
    temp_dir dir;
    auto port = free_port();
    broker mosquitto{dir.path, port};
    auto s = mqtt_settings(port);
    s.devices["tuya-plug-1"].time_zone = "Australia/Sydney";
    running_server server{s, dir.path};
    REQUIRE(connected(server, 1));

    auto device = std::make_unique<mqtt_client>(port, fmt::format("device-{}", ::getpid()));
    device->subscribe("tylink/+/ext/time/response");
    check_ntp(*device, "tuya-plug-1", "n1");

    // DST in the device's configured zone, then for a named zone.
    device->publish(request_topic("tuya-plug-1"),
                    R"({"msgId":"d1","time":1626197189,"data":{"bizType":"DST"}})");
    auto sydney = device->answer(response_topic("tuya-plug-1"), "d1");
    REQUIRE(sydney);
    CHECK(sydney->at("code") == 0);
    CHECK(sydney->at("data").at("stdTimeZone") == "+10:00");
    CHECK(sydney->at("data").at("dstIntervals").as_array().size() >= 2);
    device->publish(
        request_topic("plug-2"),
        R"({"msgId":"d2","time":1626197189638,"data":{"bizType":"DST","timezoneId":"asia/shanghai"}})");
    auto shanghai = device->answer(response_topic("plug-2"), "d2");
    REQUIRE(shanghai);
    CHECK(json::serialize(shanghai->at("data")) ==
          R"({"bizType":"DST","stdTimeZone":"+08:00","dstIntervals":[]})");

    // Errors answer 1001 on the device's topic.
    device->publish(request_topic("plug-2"),
                    R"({"msgId":"e1","time":1626197189,"data":{"bizType":"OTA"}})");
    auto refused = device->answer(response_topic("plug-2"), "e1");
    REQUIRE(refused);
    CHECK(refused->at("code") == 1001);
    CHECK(refused->at("msg") == R"(data.bizType must be "NTP" or "DST")");
    device->publish(request_topic("plug-2"), "not json");
    auto unreadable = device->answer(response_topic("plug-2"), "");
    REQUIRE(unreadable);
    CHECK(unreadable->at("code") == 1001);

    // A topic whose device id is not valid gets no answer: the next request's answer arrives
    // (in order, QoS 0 from one client) and nothing came for the bad one.
    device->publish(request_topic("bad id"),
                    R"({"msgId":"b1","time":1626197189,"data":{"bizType":"NTP"}})");
    check_ntp(*device, "plug-2", "after-bad");
    for (const auto& m : device->messages()) {
        CHECK(m.topic.find("bad id") == std::string::npos);
    }

    // The broker goes away and comes back on the same port: admsd reconnects by itself.
    device.reset();
    mosquitto.stop();
    REQUIRE(eventually([&] {
        return server.log_text().find("MQTT connection to 127.0.0.1:") != std::string::npos;
    }));
    CHECK_THAT(server.log_text(), Catch::Contains("lost"));
    mosquitto.start();
    REQUIRE(connected(server, 2));
    device = std::make_unique<mqtt_client>(port, fmt::format("device-{}-2", ::getpid()));
    device->subscribe("tylink/+/ext/time/response");
    check_ntp(*device, "tuya-plug-1", "n2");

    auto metrics =
        round_trip(server.port, fmt::format("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                            "Bearer {}\r\nConnection: close\r\n\r\n",
                                            test_token));
    CHECK_THAT(metrics.body, Catch::Contains(R"(admsd_time_service_requests_total{biz_type="NTP",)"
                                             R"(code="0",transport="mqtt"} 3)"));
    CHECK_THAT(metrics.body, Catch::Contains(R"(admsd_time_service_requests_total{biz_type="DST",)"
                                             R"(code="0",transport="mqtt"} 2)"));
    device.reset();
    server.stop();
    CHECK_THAT(server.log_text(), Catch::Contains("MQTT time service stopped"));
}

TEST_CASE("A broker that is down at start does not stop admsd, which connects once it is up",
          "[e2e][mqtt]")
{
    temp_dir dir;
    auto port = free_port();
    running_server server{mqtt_settings(port), dir.path};
    REQUIRE(eventually([&] {
        return server.log_text().find(fmt::format("MQTT cannot connect to 127.0.0.1:{}", port)) !=
               std::string::npos;
    }));
    // Still serving devices meanwhile.
    CHECK(adms::test::device_get(server.port, "/iclock/cdata?SN=DOWN1&options=all").status == 200);
    broker mosquitto{dir.path, port};
    REQUIRE(connected(server, 1, seconds{40})); // backoff: 1, 2, 4, … s
    mqtt_client device{port, fmt::format("device-{}", ::getpid())};
    device.subscribe("tylink/+/ext/time/response");
    check_ntp(device, "late-1", "n1");
}

TEST_CASE("Retained requests are stale and get no answer", "[e2e][mqtt]")
{
    temp_dir dir;
    auto port = free_port();
    broker mosquitto{dir.path, port};
    mqtt_client device{port, fmt::format("device-{}", ::getpid())};
    device.subscribe("tylink/+/ext/time/response");
    // Published before admsd subscribes: the broker hands it over, flagged retained.
    device.publish(request_topic("dev-r"),
                   R"({"msgId":"old","time":1626197189,"data":{"bizType":"NTP"}})", true);
    running_server server{mqtt_settings(port), dir.path};
    REQUIRE(connected(server, 1));
    // The retained one reached admsd before this one; its answer would have come first.
    check_ntp(device, "dev-r", "new");
    for (const auto& m : device.messages()) {
        CHECK(m.payload.find("\"old\"") == std::string::npos);
    }
    CHECK_THAT(server.log_text(), Catch::Contains("MQTT ignored a retained time request"));
}

TEST_CASE("A broker with a password file: right credentials connect, wrong ones are logged and "
          "retried",
          "[e2e][mqtt]")
{
    temp_dir dir;
    auto passwords = dir.path / "passwd";
    std::ofstream{passwords}.close();
    REQUIRE(run({ADMS_MOSQUITTO_PASSWD, "-b", passwords.string(), "admsd", "s3cret-pass"}) == 0);
    REQUIRE(run({ADMS_MOSQUITTO_PASSWD, "-b", passwords.string(), "plug", "plug-pass"}) == 0);
    auto port = free_port();
    broker mosquitto{dir.path, port,
                     fmt::format("allow_anonymous false\npassword_file {}", passwords.string())};

    auto good = mqtt_settings(port);
    good.mqtt_username = "admsd";
    good.mqtt_password = "s3cret-pass";
    running_server server{good, dir.path};
    REQUIRE(connected(server, 1));
    mqtt_client device{port, fmt::format("device-{}", ::getpid()), "plug", "plug-pass"};
    device.subscribe("tylink/+/ext/time/response");
    check_ntp(device, "plug", "n1");

    // The URL's userinfo works as well.
    temp_dir url_dir;
    auto in_url = mqtt_settings(port);
    in_url.mqtt_url = fmt::format("mqtt://admsd:s3cret-pass@127.0.0.1:{}", port);
    in_url.mqtt_client_id += "-url";
    running_server url_server{in_url, url_dir.path};
    REQUIRE(connected(url_server, 1));

    temp_dir other;
    auto wrong = mqtt_settings(port);
    wrong.mqtt_username = "admsd";
    wrong.mqtt_password = "wrong";
    wrong.mqtt_client_id += "-bad";
    running_server refused{wrong, other.path};
    REQUIRE(eventually(
        [&] { return refused.log_text().find("refused the connection") != std::string::npos; }));
    CHECK(refused.log_text().find("MQTT connected") == std::string::npos);
    CHECK(adms::test::device_get(refused.port, "/iclock/cdata?SN=PW1&options=all").status == 200);
    // The password never reaches the log.
    CHECK(refused.log_text().find("wrong") == std::string::npos);
    CHECK(server.log_text().find("s3cret") == std::string::npos);
}

TEST_CASE("Bad MQTT settings stop the start with one line", "[e2e][mqtt]")
{
    temp_dir dir;
    auto start_error = [&](server::settings s) {
        s.listen = "127.0.0.1:0";
        s.data_dir = (dir.path / "data").string();
        s.threads = 1;
        s.admin_tokens = {std::string{test_token}};
        auto log = dir.path / "log";
        std::FILE* out = std::fopen(log.c_str(), "a");
        std::string error;
        {
            server::app app{s, out};
            error = app.start().error;
        }
        std::fclose(out);
        return error;
    };
    auto s = mqtt_settings(free_port());
    s.mqtt_url = "http://user:secret@broker";
    CHECK(start_error(s) == "invalid mqtt_url: unsupported scheme 'http': expected "
                            "mqtt://[user[:password]@]host[:port] or mqtts://…");
    s.mqtt_url = "mqtt://127.0.0.1:1";
    s.mqtt_ca_file = "/etc/hostname";
    CHECK(start_error(s) == "mqtt_ca_file needs an mqtts:// mqtt_url");
    s.mqtt_url = "mqtts://127.0.0.1:1";
    s.mqtt_ca_file = (dir.path / "missing.pem").string();
    CHECK(start_error(s) ==
          fmt::format("invalid mqtt_ca_file '{}': cannot read it", s.mqtt_ca_file));
}
