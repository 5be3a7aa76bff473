#include "server/net.hpp"
#include "server/webhooks/client_tls.hpp"
#include "server/webhooks/http_client.hpp"
#include "tests/temp_dir.hpp"
#include "tests/unit/server/webhooks/test_receiver.hpp"

#include <boost/asio/ssl.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

using adms::server::network_list;
using adms::test::temp_dir;
using adms::test::test_receiver;
using namespace adms::server::webhooks;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

namespace {

// A throwaway CA and two server certificates it signed, made with the openssl command line:
// one for "localhost" and 127.0.0.1, one for "other.example" only.
struct test_pki {
    temp_dir dir;
    std::string ca_file = (dir.path / "ca.pem").string();

    test_pki()
    {
        run(fmt::format("{1} req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                        "-days 2 -subj '/CN=admsd test CA' -keyout {0}/ca.key -out {0}/ca.pem",
                        dir.path.string(), ADMS_OPENSSL));
        issue("localhost", "DNS:localhost,IP:127.0.0.1");
        issue("other", "DNS:other.example");
    }

    std::string cert(std::string_view name) const
    {
        return (dir.path / fmt::format("{}.pem", name)).string();
    }
    std::string key(std::string_view name) const
    {
        return (dir.path / fmt::format("{}.key", name)).string();
    }

    // A server context presenting certificate `name`.
    std::unique_ptr<ssl::context> server_context(std::string_view name) const
    {
        auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
        context->use_certificate_chain_file(cert(name));
        context->use_private_key_file(key(name), ssl::context::pem);
        return context;
    }

  private:
    static void run(const std::string& command)
    {
        INFO(command);
        REQUIRE(std::system((command + " >/dev/null 2>&1").c_str()) == 0);
    }

    void issue(std::string_view name, std::string_view alt_names)
    {
        auto dir_text = dir.path.string();
        std::ofstream{dir.path / fmt::format("{}.ext", name)}
            << fmt::format("subjectAltName={}\n", alt_names);
        run(fmt::format("{2} req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                        "-subj '/CN={1}' -keyout {0}/{1}.key -out {0}/{1}.csr",
                        dir_text, name, ADMS_OPENSSL));
        run(fmt::format("{2} x509 -req -in {0}/{1}.csr -CA {0}/ca.pem -CAkey {0}/ca.key "
                        "-CAcreateserial -days 2 -extfile {0}/{1}.ext -out {0}/{1}.pem",
                        dir_text, name, ADMS_OPENSSL));
    }
};

delivery_request make_request(const std::string& url, const std::string& ca_file)
{
    auto allow = *network_list::parse("127.0.0.0/8").value;
    auto checked = check_webhook_url(url, allow);
    INFO(checked.error);
    REQUIRE(checked.value);
    delivery_request request;
    request.target = *checked.value;
    request.webhook_id = "evt_tls";
    request.timestamp = 1614265330;
    request.body = R"({"type":"webhook.test"})";
    request.signature = "v1,test";
    request.connect_timeout = 2s;
    request.timeout = 5s;
    request.allow_list = allow;
    request.ca_file = ca_file;
    return request;
}

delivery_result deliver(const delivery_request& request)
{
    net::io_context io;
    auto result = net::co_spawn(io, post(request), net::use_future);
    io.run();
    return result.get();
}

test_receiver::reply accepted(const test_receiver::request&)
{
    return test_receiver::answer(200, "stored");
}

} // namespace

TEST_CASE("webhook client TLS: a server whose CA is in ca_file is verified and delivered to",
          "[webhooks][client][tls]")
{
    test_pki pki;
    auto tls = pki.server_context("localhost");
    test_receiver receiver{accepted, tls.get()};
    auto result =
        deliver(make_request(fmt::format("https://localhost:{}/in", receiver.port()), pki.ca_file));
    INFO(result.error);
    CHECK(result.outcome == delivery_outcome::success);
    CHECK(result.status == 200);
    CHECK(result.body == "stored");
    REQUIRE(receiver.requests().size() == 1);
    CHECK(receiver.requests()[0].body() == R"({"type":"webhook.test"})");
}

TEST_CASE("webhook client TLS: a literal IP host is checked against the certificate's IP names",
          "[webhooks][client][tls]")
{
    test_pki pki;
    auto tls = pki.server_context("localhost");
    test_receiver receiver{accepted, tls.get()};
    auto result =
        deliver(make_request(fmt::format("https://127.0.0.1:{}/in", receiver.port()), pki.ca_file));
    INFO(result.error);
    CHECK(result.outcome == delivery_outcome::success);

    auto other_tls = pki.server_context("other");
    test_receiver other{accepted, other_tls.get()};
    auto refused =
        deliver(make_request(fmt::format("https://127.0.0.1:{}/in", other.port()), pki.ca_file));
    CHECK(refused.outcome == delivery_outcome::tls_error);
    CHECK(refused.error.ends_with("the certificate is not valid for the host name 127.0.0.1"));
}

TEST_CASE("webhook client TLS: without ca_file the private CA is not trusted",
          "[webhooks][client][tls]")
{
    test_pki pki;
    auto tls = pki.server_context("localhost");
    test_receiver receiver{accepted, tls.get()};
    auto result =
        deliver(make_request(fmt::format("https://localhost:{}/in", receiver.port()), ""));
    CHECK(result.outcome == delivery_outcome::tls_error);
    CHECK(result.error == fmt::format("TLS handshake with 127.0.0.1:{} failed: certificate "
                                      "verification failed: unable to get local issuer "
                                      "certificate",
                                      receiver.port()));
    CHECK(receiver.requests().empty());
}

TEST_CASE("webhook client TLS: a trusted certificate for another name fails the host name check",
          "[webhooks][client][tls]")
{
    test_pki pki;
    auto tls = pki.server_context("other");
    test_receiver receiver{accepted, tls.get()};
    auto result =
        deliver(make_request(fmt::format("https://localhost:{}/in", receiver.port()), pki.ca_file));
    CHECK(result.outcome == delivery_outcome::tls_error);
    CHECK(result.error ==
          fmt::format("TLS handshake with 127.0.0.1:{} failed: the certificate is not valid for "
                      "the host name localhost",
                      receiver.port()));
    CHECK(receiver.requests().empty());
}

TEST_CASE("webhook client TLS: an unreadable ca_file is a TLS error that names it",
          "[webhooks][client][tls]")
{
    test_pki pki;
    auto tls = pki.server_context("localhost");
    test_receiver receiver{accepted, tls.get()};
    auto missing = (pki.dir.path / "missing.pem").string();
    auto result =
        deliver(make_request(fmt::format("https://localhost:{}/in", receiver.port()), missing));
    CHECK(result.outcome == delivery_outcome::tls_error);
    CHECK(result.error.starts_with(fmt::format("cannot load ca_file '{}': ", missing)));
}

TEST_CASE("webhook client TLS: a plain-HTTP server behind an https URL is a TLS error, not a hang",
          "[webhooks][client][tls]")
{
    test_receiver receiver{accepted};
    auto result =
        deliver(make_request(fmt::format("https://localhost:{}/in", receiver.port()), ""));
    CHECK(result.outcome == delivery_outcome::tls_error);
    CHECK(result.duration < 5s);
}

TEST_CASE("webhook client TLS: contexts are shared per ca_file and made again when it changes",
          "[webhooks][client][tls]")
{
    test_pki pki;
    auto system_only = client_tls_context("");
    REQUIRE(system_only.context);
    CHECK(client_tls_context("").context == system_only.context);

    auto first = client_tls_context(pki.ca_file);
    REQUIRE(first.context);
    CHECK(first.context != system_only.context);
    CHECK(client_tls_context(pki.ca_file).context == first.context);

    // A second CA in the file: its size changes, so the next call reads it again.
    std::ofstream{pki.ca_file, std::ios::app} << std::ifstream{pki.cert("other")}.rdbuf();
    auto changed = client_tls_context(pki.ca_file);
    REQUIRE(changed.context);
    CHECK(changed.context != first.context);

    auto missing = client_tls_context((pki.dir.path / "missing.pem").string());
    CHECK_FALSE(missing.context);
    CHECK(missing.error.starts_with("cannot load ca_file '"));
}
