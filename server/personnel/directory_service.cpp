#include "server/personnel/directory_service.hpp"

#include "server/net.hpp"
#include "server/observability/logger.hpp"
#include "server/personnel/person_rules.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/database.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace adms::server::personnel {
namespace {

instant now()
{
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
}

template <class T>
directory_result<T> storage_failed(const storage_error& e)
{
    return {directory_error::storage, "storage unavailable: " + e.message};
}

std::vector<std::string> sorted_unique(std::vector<std::string> v)
{
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

// The areas a person was or is in (both lists sorted): every device of them may need a change.
std::vector<std::string> areas_involved(const std::vector<std::string>& before,
                                        const std::vector<std::string>& after)
{
    std::vector<std::string> out;
    std::set_union(before.begin(), before.end(), after.begin(), after.end(),
                   std::back_inserter(out));
    return out;
}

// A read on the pool of one optional row: the row, or why not (storage; not_found with
// `missing` when there is none). `read` must capture by reference only: g++ 12 destroys a
// coroutine's by-value lambda parameter twice when it owns a string (a double free seen here).
template <class T, class Read>
net::awaitable<directory_result<T>> read_on(blocking_pool& pool, Read read, std::string missing)
{
    auto found = co_await pool.run(std::move(read));
    if (!found) {
        co_return storage_failed<T>(found.error);
    }
    if (!*found.value) {
        co_return directory_result<T>{directory_error::not_found, std::move(missing)};
    }
    co_return std::move(**found.value);
}

// A list read on the pool: its rows, or the storage error.
template <class T, class Read>
net::awaitable<directory_result<T>> list_on(blocking_pool& pool, Read read)
{
    auto listed = co_await pool.run(std::move(read));
    if (!listed) {
        co_return storage_failed<T>(listed.error);
    }
    co_return std::move(*listed.value);
}

// What a store_person batch did.
struct person_write {
    std::optional<stored_person> before;
    std::optional<stored_person> after;
    std::vector<std::string> unknown_areas;
    bool exists = false; // create of a taken PIN, or update of an unknown one
};

// Inside a batch: saves `p` (as `w.after`) when every area it lists exists, else records the
// unknown ones in `w` and saves nothing.
storage_status save_if_areas_exist(write_tx& tx, const person& p, instant t, person_write& w)
{
    auto unknown = tx.persons().unknown_areas(p.areas);
    if (!unknown) {
        return unknown.error;
    }
    if (!unknown.value->empty()) {
        w.unknown_areas = std::move(*unknown.value);
        return std::monostate{};
    }
    auto saved = tx.persons().save_person(p, t);
    if (!saved) {
        return saved.error;
    }
    bool same = *saved.value == person_saved::unchanged && w.before;
    w.after = stored_person{p, same ? w.before->updated_at : t};
    return std::monostate{};
}

} // namespace

void apply_patch(person& p, const person_patch& patch)
{
    if (patch.name) {
        p.name = *patch.name;
    }
    if (patch.card) {
        p.card = *patch.card;
    }
    if (patch.privilege) {
        p.privilege = *patch.privilege;
    }
    if (patch.password) {
        p.password = *patch.password;
    }
    if (patch.verify) {
        p.verify = *patch.verify;
    }
    if (patch.status) {
        p.status = *patch.status;
    }
    if (patch.external_id) {
        p.external_id = *patch.external_id;
    }
    if (patch.areas) {
        p.areas = *patch.areas;
    }
}

directory_service::directory_service(database& store, blocking_pool& reader, commit_queue& writer,
                                     logger& log)
    : store_{store}, reader_{reader}, writer_{writer}, log_{log}
{
}

void directory_service::on_change(std::function<void(const directory_change&)> listener)
{
    std::lock_guard lock{listeners_mutex_};
    listeners_.push_back(std::move(listener));
}

void directory_service::changed(const directory_change& change)
{
    std::vector<std::function<void(const directory_change&)>> listeners;
    {
        std::lock_guard lock{listeners_mutex_};
        listeners = listeners_;
    }
    for (const auto& l : listeners) {
        l(change);
    }
}

net::awaitable<directory_result<std::vector<stored_area>>> directory_service::list_areas()
{
    co_return co_await list_on<std::vector<stored_area>>(
        reader_, [this] { return store_.persons().list_areas(); });
}

net::awaitable<directory_result<stored_area>> directory_service::get_area(std::string code)
{
    // Named, not a temporary in the co_await expression (g++ 12 destroys those twice).
    auto missing = fmt::format("Area not found: {}", code);
    co_return co_await read_on<stored_area>(
        reader_, [this, &code] { return store_.persons().find_area(code); }, std::move(missing));
}

net::awaitable<directory_result<stored_area>> directory_service::create_area(area a)
{
    if (auto why = check_area_code(a.code)) {
        co_return directory_result<stored_area>{directory_error::invalid, *why, "code"};
    }
    if (auto why = check_area_name(a.name)) {
        co_return directory_result<stored_area>{directory_error::invalid, *why, "name"};
    }
    auto existing = co_await get_area(a.code);
    if (existing) {
        co_return directory_result<stored_area>{
            directory_error::exists, fmt::format("Area already exists: {}", a.code), "code"};
    }
    if (existing.error != directory_error::not_found) {
        co_return existing;
    }
    auto saved = co_await writer_.run([&](write_tx& tx) { return tx.persons().save_area(a); });
    if (!saved) {
        co_return storage_failed<stored_area>(saved.error);
    }
    log_.event("directory", fmt::format("Area {} created", a.code), {{"area", a.code}});
    co_return co_await get_area(a.code);
}

net::awaitable<directory_result<stored_area>> directory_service::rename_area(std::string code,
                                                                             std::string name)
{
    if (auto why = check_area_name(name)) {
        co_return directory_result<stored_area>{directory_error::invalid, *why, "name"};
    }
    auto existing = co_await get_area(code);
    if (!existing) {
        co_return existing;
    }
    auto saved = co_await writer_.run([&](write_tx& tx) {
        return tx.persons().save_area({code, name});
    });
    if (!saved) {
        co_return storage_failed<stored_area>(saved.error);
    }
    co_return co_await get_area(code);
}

net::awaitable<directory_result<bool>> directory_service::delete_area(std::string code)
{
    auto existing = co_await get_area(code);
    if (!existing) {
        co_return directory_result<bool>{existing.error, existing.message};
    }
    if (existing.value->devices > 0) {
        co_return directory_result<bool>{
            directory_error::in_use,
            fmt::format("Area {} has {} device{}: move them to another area first", code,
                        existing.value->devices, existing.value->devices == 1 ? "" : "s")};
    }
    auto deleted =
        co_await writer_.run([&](write_tx& tx) { return tx.persons().delete_area(code); });
    if (!deleted) {
        co_return storage_failed<bool>(deleted.error);
    }
    log_.event("directory", fmt::format("Area {} deleted", code), {{"area", code}});
    changed({{}, {code}});
    co_return *deleted.value;
}

net::awaitable<directory_result<std::vector<stored_person>>>
directory_service::list_persons(person_query q)
{
    co_return co_await list_on<std::vector<stored_person>>(
        reader_, [this, &q] { return store_.persons().list_persons(q); });
}

net::awaitable<directory_result<stored_person>> directory_service::get_person(std::string pin)
{
    auto missing = fmt::format("Person not found: {}", pin);
    co_return co_await read_on<stored_person>(
        reader_, [this, &pin] { return store_.persons().find_person(pin); }, std::move(missing));
}

net::awaitable<directory_result<stored_person>> directory_service::create_person(person p)
{
    co_return co_await store_person(std::move(p), true);
}

net::awaitable<directory_result<stored_person>> directory_service::update_person(std::string pin,
                                                                                 person_patch patch)
{
    // Read, patch and write in one batch: two PATCHes of one person never lose each other's
    // fields.
    auto t = now();
    auto written = co_await writer_.run([&](write_tx& tx) -> storage_result<person_write> {
        person_write w;
        auto found = tx.persons().find_person(pin);
        if (!found) {
            return found.error;
        }
        if (!*found.value) {
            w.exists = false;
            return w;
        }
        w.exists = true;
        w.before = **found.value;
        auto p = w.before->person;
        apply_patch(p, patch);
        p.areas = sorted_unique(p.areas);
        if (check_person(p)) {
            return w; // checked again below, outside the batch, for the message
        }
        if (auto saved = save_if_areas_exist(tx, p, t, w); !saved) {
            return saved.error;
        }
        return w;
    });
    if (!written) {
        co_return storage_failed<stored_person>(written.error);
    }
    auto& w = *written.value;
    if (!w.exists) {
        co_return directory_result<stored_person>{directory_error::not_found,
                                                  fmt::format("Person not found: {}", pin)};
    }
    if (!w.after) {
        auto p = w.before->person;
        apply_patch(p, patch);
        if (auto bad = check_person(p)) {
            co_return directory_result<stored_person>{directory_error::invalid, bad->message,
                                                      bad->field};
        }
        co_return directory_result<stored_person>{
            directory_error::invalid,
            fmt::format("unknown area{}: {}", w.unknown_areas.size() == 1 ? "" : "s",
                        fmt::join(w.unknown_areas, ", ")),
            "areas"};
    }
    if (w.after->person != w.before->person) {
        log_.event("directory", fmt::format("Person {} updated", pin), {{"pin", pin}});
        changed({{pin}, areas_involved(w.before->person.areas, w.after->person.areas)});
    }
    co_return std::move(*w.after);
}

net::awaitable<directory_result<stored_person>> directory_service::store_person(person p,
                                                                                bool create)
{
    p.areas = sorted_unique(std::move(p.areas));
    if (auto bad = check_person(p)) {
        co_return directory_result<stored_person>{directory_error::invalid, bad->message,
                                                  bad->field};
    }
    auto t = now();
    auto written = co_await writer_.run([&](write_tx& tx) -> storage_result<person_write> {
        person_write w;
        auto found = tx.persons().find_person(p.pin);
        if (!found) {
            return found.error;
        }
        if (*found.value) {
            w.before = **found.value;
            if (create) {
                w.exists = true;
                return w;
            }
        }
        if (auto saved = save_if_areas_exist(tx, p, t, w); !saved) {
            return saved.error;
        }
        return w;
    });
    if (!written) {
        co_return storage_failed<stored_person>(written.error);
    }
    auto& w = *written.value;
    if (w.exists) {
        co_return directory_result<stored_person>{
            directory_error::exists, fmt::format("Person already exists: {}", p.pin), "pin"};
    }
    if (!w.after) {
        co_return directory_result<stored_person>{
            directory_error::invalid,
            fmt::format("unknown area{}: {}", w.unknown_areas.size() == 1 ? "" : "s",
                        fmt::join(w.unknown_areas, ", ")),
            "areas"};
    }
    log_.event("directory", fmt::format("Person {} {}", p.pin, w.before ? "updated" : "created"),
               {{"pin", p.pin}});
    changed(
        {{p.pin},
         areas_involved(w.before ? w.before->person.areas : std::vector<std::string>{}, p.areas)});
    co_return std::move(*w.after);
}

net::awaitable<directory_result<bool>> directory_service::delete_person(std::string pin)
{
    // The person's areas, read in the deleting batch: their devices are told.
    auto deleted = co_await writer_.run(
        [&](write_tx& tx) -> storage_result<std::optional<std::vector<std::string>>> {
            auto found = tx.persons().find_person(pin);
            if (!found) {
                return found.error;
            }
            if (!*found.value) {
                return std::optional<std::vector<std::string>>{};
            }
            auto gone = tx.persons().delete_person(pin);
            if (!gone) {
                return gone.error;
            }
            return std::optional{(*found.value)->person.areas};
        });
    if (!deleted) {
        co_return storage_failed<bool>(deleted.error);
    }
    if (!*deleted.value) {
        co_return directory_result<bool>{directory_error::not_found,
                                         fmt::format("Person not found: {}", pin)};
    }
    log_.event("directory", fmt::format("Person {} deleted", pin), {{"pin", pin}});
    changed({{pin}, **deleted.value});
    co_return true;
}

net::awaitable<directory_result<std::vector<person_template>>>
directory_service::templates_of(std::string pin)
{
    auto found = co_await get_person(pin);
    if (!found) {
        co_return directory_result<std::vector<person_template>>{found.error, found.message};
    }
    co_return co_await list_on<std::vector<person_template>>(
        reader_, [this, &pin] { return store_.persons().templates_of(pin, false); });
}

} // namespace adms::server::personnel
