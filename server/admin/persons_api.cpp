#include "server/admin/persons_api.hpp"

#include "server/admin/admin_support.hpp"
#include "server/personnel/person_rules.hpp"
#include "server/records/punch_format.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace adms::server {

using namespace personnel;

namespace {

json::value utc_iso(instant t)
{
    return json::value(format_iso(t, *tz::locate_zone("UTC").value, true));
}

json::object area_json(const stored_area& a)
{
    return {{"code", a.area.code},
            {"name", a.area.name},
            {"devices", a.devices},
            {"persons", a.persons}};
}

// A person as the API shows it: the password never, only whether there is one.
json::object person_json(const stored_person& s)
{
    const auto& p = s.person;
    return {{"pin", p.pin},
            {"name", p.name},
            {"card", p.card},
            {"privilege", p.privilege},
            {"has_password", p.password.has_value()},
            {"verify", p.verify},
            {"status", to_string(p.status)},
            {"source", to_string(p.source)},
            {"external_id", p.external_id},
            {"areas", json::array(p.areas.begin(), p.areas.end())},
            {"updated_at", utc_iso(s.updated_at)}};
}

json::object template_json(const person_template& t)
{
    return {{"type", t.type},
            {"no", t.no},
            {"index", t.index},
            {"version", fmt::format("{}.{}", t.major, t.minor)},
            {"format", t.format},
            {"valid", t.valid},
            {"duress", t.duress},
            {"sha256", t.sha256},
            {"source_device", t.source_serial_number},
            {"captured_at", utc_iso(t.captured_at)}};
}

template <class T>
http_response failure_reply(const directory_result<T>& r)
{
    switch (r.error) {
    case directory_error::invalid:
        return input_reply({r.field, r.message});
    case directory_error::not_found:
        return error_reply(404, r.message);
    case directory_error::exists:
    case directory_error::in_use:
        return error_reply(409, r.message);
    case directory_error::storage:
    case directory_error::none:
        break;
    }
    return error_reply(503, r.message);
}

http_response person_reply(unsigned status, const stored_person& p)
{
    json::object body{{"success", true}};
    for (const auto& field : person_json(p)) {
        body.emplace(field.key(), field.value());
    }
    return json_reply(status, body);
}

// An int field within `check`'s bounds (the directory checks again; this gives the JSON error).
input_result<std::optional<int>> small_int(const json::object& o, std::string_view field)
{
    auto v = optional_integer(o, field);
    if (!v) {
        return v.error;
    }
    if (!*v.value) {
        return std::optional<int>{};
    }
    if (**v.value < -1000000 || **v.value > 1000000) {
        return input_error{std::string{field}, "out of range"};
    }
    return std::optional<int>{static_cast<int>(**v.value)};
}

// The fields both bodies may carry, into a patch. `password`: a string sets it, null removes it.
input_result<person_patch> read_fields(const json::object& o)
{
    person_patch patch;
    for (auto [field, target] : {std::pair{"name", &patch.name}, std::pair{"card", &patch.card},
                                 std::pair{"external_id", &patch.external_id}}) {
        auto v = optional_string(o, field);
        if (!v) {
            return v.error;
        }
        *target = std::move(*v.value);
    }
    for (auto [field, target] :
         {std::pair{"privilege", &patch.privilege}, std::pair{"verify", &patch.verify}}) {
        auto v = small_int(o, field);
        if (!v) {
            return v.error;
        }
        *target = *v.value;
    }
    if (const auto* pw = o.if_contains("password")) {
        if (pw->is_null()) {
            patch.password = std::optional<std::string>{};
        } else if (pw->is_string()) {
            patch.password = std::optional<std::string>{std::string{pw->get_string()}};
        } else {
            return input_error{"password", "must be a string of digits, or null to remove it"};
        }
    }
    auto status = optional_string(o, "status");
    if (!status) {
        return status.error;
    }
    if (*status.value) {
        patch.status = parse_person_status(**status.value);
        if (!patch.status) {
            return input_error{"status", "must be \"active\" or \"left\""};
        }
    }
    auto areas = optional_strings(o, "areas");
    if (!areas) {
        return areas.error;
    }
    patch.areas = std::move(*areas.value);
    return patch;
}

} // namespace

input_result<person> parse_person_create(std::string_view body)
{
    auto parsed = parse_json_object(body, false);
    if (!parsed) {
        return parsed.error;
    }
    const auto& o = *parsed.value;
    if (auto unknown = reject_unknown_fields(o, {"pin", "name", "card", "privilege", "password",
                                                 "verify", "status", "external_id", "areas"})) {
        return *unknown;
    }
    auto pin = optional_string(o, "pin");
    if (!pin) {
        return pin.error;
    }
    if (!*pin.value) {
        return input_error{"pin", "required"};
    }
    auto fields = read_fields(o);
    if (!fields) {
        return fields.error;
    }
    person p;
    p.pin = **pin.value;
    p.source = person_source::api;
    apply_patch(p, *fields.value);
    return p;
}

input_result<person_patch> parse_person_patch(std::string_view body)
{
    auto parsed = parse_json_object(body, false);
    if (!parsed) {
        return parsed.error;
    }
    const auto& o = *parsed.value;
    if (o.contains("pin")) {
        return input_error{"pin", "cannot be changed (create the person under the new PIN)"};
    }
    if (auto unknown = reject_unknown_fields(o, {"name", "card", "privilege", "password", "verify",
                                                 "status", "external_id", "areas"})) {
        return *unknown;
    }
    return read_fields(o);
}

route_handler persons_api::route(handler h)
{
    return [this, h](const http_request& request, const route_match& match) {
        return (this->*h)(request, match);
    };
}

boost::asio::awaitable<http_response> persons_api::list_areas(const http_request&,
                                                              const route_match&)
{
    auto areas = co_await directory_.list_areas();
    if (!areas) {
        co_return failure_reply(areas);
    }
    json::array data;
    for (const auto& a : *areas.value) {
        data.push_back(area_json(a));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> persons_api::create_area(const http_request& request,
                                                               const route_match&)
{
    auto parsed = parse_json_object(request.body, false);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    if (auto unknown = reject_unknown_fields(*parsed.value, {"code", "name"})) {
        co_return input_reply(*unknown);
    }
    auto code = optional_string(*parsed.value, "code");
    auto name = optional_string(*parsed.value, "name");
    if (!code || !name) {
        co_return input_reply(!code ? code.error : name.error);
    }
    if (!*code.value) {
        co_return input_reply({"code", "required"});
    }
    // A named value, not a braced temporary inside co_await (g++ 12 destroys it twice).
    personnel::area wanted{**code.value, name.value->value_or("")};
    auto created = co_await directory_.create_area(std::move(wanted));
    if (!created) {
        co_return failure_reply(created);
    }
    json::object body{{"success", true}};
    for (const auto& field : area_json(*created.value)) {
        body.emplace(field.key(), field.value());
    }
    co_return json_reply(201, body);
}

boost::asio::awaitable<http_response> persons_api::get_area(const http_request&,
                                                            const route_match& match)
{
    auto found = co_await directory_.get_area(match.param("code"));
    if (!found) {
        co_return failure_reply(found);
    }
    json::object body{{"success", true}};
    for (const auto& field : area_json(*found.value)) {
        body.emplace(field.key(), field.value());
    }
    co_return json_reply(200, body);
}

boost::asio::awaitable<http_response> persons_api::patch_area(const http_request& request,
                                                              const route_match& match)
{
    auto parsed = parse_json_object(request.body, false);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    if (parsed.value->contains("code")) {
        co_return input_reply({"code", "cannot be changed (create a new area and move to it)"});
    }
    if (auto unknown = reject_unknown_fields(*parsed.value, {"name"})) {
        co_return input_reply(*unknown);
    }
    auto name = optional_string(*parsed.value, "name");
    if (!name) {
        co_return input_reply(name.error);
    }
    if (!*name.value) {
        co_return input_reply({"name", "required"});
    }
    auto renamed = co_await directory_.rename_area(match.param("code"), **name.value);
    if (!renamed) {
        co_return failure_reply(renamed);
    }
    json::object body{{"success", true}};
    for (const auto& field : area_json(*renamed.value)) {
        body.emplace(field.key(), field.value());
    }
    co_return json_reply(200, body);
}

boost::asio::awaitable<http_response> persons_api::delete_area(const http_request&,
                                                               const route_match& match)
{
    auto deleted = co_await directory_.delete_area(match.param("code"));
    if (!deleted) {
        co_return failure_reply(deleted);
    }
    co_return json_reply(200, json::object{{"success", true}});
}

boost::asio::awaitable<http_response> persons_api::list_persons(const http_request&,
                                                                const route_match& match)
{
    person_query q;
    if (const auto* area = match.find_query("area")) {
        q.area = *area;
    }
    if (const auto* after = match.find_query("after")) {
        q.after = *after;
    }
    if (const auto* status = match.find_query("status")) {
        q.status = parse_person_status(*status);
        if (!q.status) {
            co_return input_reply({"status", "must be \"active\" or \"left\""});
        }
    }
    if (const auto* source = match.find_query("source")) {
        q.source = parse_person_source(*source);
        if (!q.source) {
            co_return input_reply({"source", "must be api, csv, ldap or device"});
        }
    }
    if (const auto* limit = match.find_query("limit")) {
        auto n = parse_number(*limit);
        if (!n || *n < 1 || *n > 1000) {
            co_return input_reply({"limit", "must be 1 to 1000"});
        }
        q.limit = static_cast<std::size_t>(*n);
    }
    auto persons = co_await directory_.list_persons(q);
    if (!persons) {
        co_return failure_reply(persons);
    }
    json::array data;
    for (const auto& p : *persons.value) {
        data.push_back(person_json(p));
    }
    // A full page may have more after it: its last PIN is the next cursor.
    json::value next = nullptr;
    if (persons.value->size() == q.limit) {
        next = persons.value->back().person.pin;
    }
    co_return json_reply(
        200, json::object{{"success", true}, {"data", std::move(data)}, {"next", next}});
}

boost::asio::awaitable<http_response> persons_api::create_person(const http_request& request,
                                                                 const route_match&)
{
    auto p = parse_person_create(request.body);
    if (!p) {
        co_return input_reply(p.error);
    }
    auto created = co_await directory_.create_person(std::move(*p.value));
    if (!created) {
        co_return failure_reply(created);
    }
    co_return person_reply(201, *created.value);
}

boost::asio::awaitable<http_response> persons_api::get_person(const http_request&,
                                                              const route_match& match)
{
    auto found = co_await directory_.get_person(match.param("pin"));
    if (!found) {
        co_return failure_reply(found);
    }
    co_return person_reply(200, *found.value);
}

boost::asio::awaitable<http_response> persons_api::patch_person(const http_request& request,
                                                                const route_match& match)
{
    auto patch = parse_person_patch(request.body);
    if (!patch) {
        co_return input_reply(patch.error);
    }
    auto updated = co_await directory_.update_person(match.param("pin"), std::move(*patch.value));
    if (!updated) {
        co_return failure_reply(updated);
    }
    co_return person_reply(200, *updated.value);
}

boost::asio::awaitable<http_response> persons_api::delete_person(const http_request&,
                                                                 const route_match& match)
{
    auto deleted = co_await directory_.delete_person(match.param("pin"));
    if (!deleted) {
        co_return failure_reply(deleted);
    }
    co_return json_reply(200, json::object{{"success", true}});
}

boost::asio::awaitable<http_response> persons_api::person_templates(const http_request&,
                                                                    const route_match& match)
{
    auto templates = co_await directory_.templates_of(match.param("pin"));
    if (!templates) {
        co_return failure_reply(templates);
    }
    json::array data;
    for (const auto& t : *templates.value) {
        data.push_back(template_json(t));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

} // namespace adms::server
