#pragma once

#include "server/personnel/person.hpp"
#include "server/storage/person_store.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace adms::server {

class blocking_pool;
class commit_queue;
class database;
class logger;

namespace personnel {

// Why a directory call changed nothing.
enum class directory_error {
    none,
    invalid,   // a field is refused (`field` names it)
    not_found, // no such person or area
    exists,    // create of a PIN or code that is taken
    in_use,    // an area a device is assigned to
    storage,   // a read or write failed
};

// A directory call's value, or why not (with the field and a message naming the value).
template <class T>
struct directory_result {
    std::optional<T> value;
    directory_error error = directory_error::none;
    std::string field;
    std::string message;

    directory_result(T v) : value(std::move(v)) {}
    directory_result(directory_error e, std::string why, std::string f = {})
        : error(e), field(std::move(f)), message(std::move(why))
    {
    }
    explicit operator bool() const { return value.has_value(); }
};

// The fields a PATCH /persons/{pin} changes; absent ones stay. `password`: an inner nullopt
// removes it.
struct person_patch {
    std::optional<std::string> name;
    std::optional<std::string> card;
    std::optional<int> privilege;
    std::optional<std::optional<std::string>> password;
    std::optional<int> verify;
    std::optional<person_status> status;
    std::optional<std::string> external_id;
    std::optional<std::vector<std::string>> areas;
};

// Applies a patch to a person (no checks: check_person after).
void apply_patch(person& p, const person_patch& patch);

// What changed in the directory, told to listeners after the commit: the PINs whose desired
// state may differ now, and the areas they were or are in (whose devices may need a change).
struct directory_change {
    std::vector<std::string> pins;
    std::vector<std::string> areas;
};

// The people directory's domain operations (docs/personnel.md): validate, store through the
// single writer, tell listeners (the provisioning reconciler) what changed after the commit.
// Thread safety: any thread may call, concurrently.
class directory_service {
  public:
    directory_service(database& store, blocking_pool& reader, commit_queue& writer, logger& log);

    // Called after each committed change, on the caller's thread; must not block.
    void on_change(std::function<void(const directory_change&)> listener);

    boost::asio::awaitable<directory_result<std::vector<stored_area>>> list_areas();
    boost::asio::awaitable<directory_result<stored_area>> get_area(std::string code);
    boost::asio::awaitable<directory_result<stored_area>> create_area(area a);
    boost::asio::awaitable<directory_result<stored_area>> rename_area(std::string code,
                                                                      std::string name);
    boost::asio::awaitable<directory_result<bool>> delete_area(std::string code);

    boost::asio::awaitable<directory_result<std::vector<stored_person>>>
    list_persons(person_query q);
    boost::asio::awaitable<directory_result<stored_person>> get_person(std::string pin);
    boost::asio::awaitable<directory_result<stored_person>> create_person(person p);
    boost::asio::awaitable<directory_result<stored_person>> update_person(std::string pin,
                                                                          person_patch patch);
    boost::asio::awaitable<directory_result<bool>> delete_person(std::string pin);
    // A person's templates without their data; not_found for an unknown PIN.
    boost::asio::awaitable<directory_result<std::vector<person_template>>>
    templates_of(std::string pin);

  private:
    // Stores `p` (created: must not exist yet) after checking its fields and areas.
    boost::asio::awaitable<directory_result<stored_person>> store_person(person p, bool create);
    void changed(const directory_change& change);

    database& store_;
    blocking_pool& reader_;
    commit_queue& writer_;
    logger& log_;
    std::mutex listeners_mutex_;
    std::vector<std::function<void(const directory_change&)>> listeners_;
};

} // namespace personnel
} // namespace adms::server
