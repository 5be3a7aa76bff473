#include "tz/zone.hpp"

#include "protocol/zk_time.hpp"

#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <stdexcept>

namespace adms::tz {

// Turns a handle back into the zone library's object; the one place that knows what it holds.
struct zone_access {
    static const date::time_zone& native(const zone& z)
    {
        return *static_cast<const date::time_zone*>(z.native_);
    }
    static zone make(const date::time_zone* native) { return zone{native}; }
};

namespace {

using std::chrono::seconds;
using std::chrono::sys_seconds;

// The zone library's sentinels: the first period of a zone begins at -32767-01-01 and the last
// one ends at 32767-12-31. Inputs are kept a day inside so offsets cannot overflow.
constexpr sys_seconds min_instant{
    std::chrono::sys_days{std::chrono::year{-32767} / std::chrono::January / 1}};
constexpr sys_seconds max_instant{
    std::chrono::sys_days{std::chrono::year{32767} / std::chrono::December / 31}};
constexpr sys_seconds min_input = min_instant + std::chrono::days{1};
constexpr sys_seconds max_input = max_instant - std::chrono::days{1};

sys_seconds clamp_instant(sys_seconds time)
{
    return std::clamp(time, min_input, max_input);
}

std::chrono::local_seconds clamp_local(std::chrono::local_seconds time)
{
    constexpr std::chrono::local_seconds lo{min_input.time_since_epoch()};
    constexpr std::chrono::local_seconds hi{max_input.time_since_epoch()};
    return std::clamp(time, lo, hi);
}

// One of the zone library's periods of constant offset, abbreviation and DST flag.
struct period {
    sys_seconds begin;
    sys_seconds end;
    seconds offset;
    bool dst;
    bool first() const { return begin <= min_instant; }
    bool last() const { return end >= max_instant; }
};

period to_period(const date::sys_info& info)
{
    // With the OS database `save` is only a flag (one minute when set): the real saving is not
    // known, so it is never used as an amount.
    return {info.begin, info.end, info.offset, info.save != std::chrono::minutes{0}};
}

period period_at(const date::time_zone& z, sys_seconds time)
{
    return to_period(z.get_info(clamp_instant(time)));
}

// The period before `p`, or nullopt for the first one.
std::optional<period> previous(const date::time_zone& z, const period& p)
{
    if (p.first()) {
        return std::nullopt;
    }
    period before = period_at(z, p.begin - seconds{1});
    if (before.begin >= p.begin) { // cannot happen with sane data; never loop on it
        return std::nullopt;
    }
    return before;
}

// The period after `p`, or nullopt for the last one.
std::optional<period> next(const date::time_zone& z, const period& p)
{
    if (p.last()) {
        return std::nullopt;
    }
    period after = period_at(z, p.end);
    if (after.end <= p.end) {
        return std::nullopt;
    }
    return after;
}

// Whether two adjacent periods look the same to a user (the split only renames the zone).
bool same_observable(const period& a, const period& b)
{
    return a.offset == b.offset && a.dst == b.dst;
}

seconds standard_offset_of(const date::time_zone& z, const period& p)
{
    if (!p.dst) {
        return p.offset;
    }
    for (auto q = previous(z, p); q; q = previous(z, *q)) {
        if (!q->dst) {
            return q->offset;
        }
    }
    for (auto q = next(z, p); q; q = next(z, *q)) {
        if (!q->dst) {
            return q->offset;
        }
    }
    return p.offset; // DST over the whole data: no better answer
}

// The whole DST stretch containing the DST period `p` (contiguous DST periods merged).
dst_interval dst_stretch(const date::time_zone& z, const period& p)
{
    period begin = p;
    for (auto q = previous(z, begin); q && q->dst; q = previous(z, begin)) {
        begin = *q;
    }
    period end = p;
    for (auto q = next(z, end); q && q->dst; q = next(z, end)) {
        end = *q;
    }
    return {begin.begin, end.end, begin.offset, standard_offset_of(z, begin)};
}

// A name fit for an error message: control and non-ASCII bytes escaped, long names cut.
std::string quoted(std::string_view name)
{
    constexpr std::size_t max_shown = 64;
    constexpr char hex[] = "0123456789abcdef";
    std::string out = "'";
    for (std::size_t i = 0; i < name.size() && i < max_shown; ++i) {
        auto c = static_cast<unsigned char>(name[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    out += name.size() > max_shown ? "'..." : "'";
    return out;
}

std::string lowercase(std::string_view text)
{
    std::string out{text};
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// Not an IANA name: /usr/share/zoneinfo/localtime is the host's configured zone.
bool excluded(std::string_view name)
{
    return name == "localtime";
}

using case_index = std::map<std::string, const date::time_zone*, std::less<>>;

// Lower-cased zone and link names, built once (function-local statics initialise thread-safely;
// a throw during the build is retried on the next call).
const case_index& lowercase_index(const date::tzdb& db)
{
    static const case_index index = [&db] {
        case_index built;
        for (const auto& z : db.zones) {
            if (!excluded(z.name())) {
                built.emplace(lowercase(z.name()), &z);
            }
        }
        return built;
    }();
    return index;
}

zone_lookup unknown(std::string_view name)
{
    return {std::nullopt, "unknown time zone " + quoted(name)};
}

} // namespace

zone_lookup locate_zone(std::string_view name, name_match match)
{
    const date::tzdb* db = nullptr;
    try {
        db = &date::get_tzdb();
    } catch (const std::exception& e) {
        return {std::nullopt, "time zone database unavailable while looking up " + quoted(name) +
                                  ": " + e.what()};
    }
    if (excluded(name)) {
        return unknown(name);
    }
    const date::time_zone* found = nullptr;
    if (match == name_match::exact) {
        try {
            found = date::locate_zone(name); // searches the same database as `db`
        } catch (const std::runtime_error&) {
            // "<name> not found in timezone database": the only failure once the db is loaded.
            return unknown(name);
        }
    } else {
        const case_index* index = nullptr;
        try {
            index = &lowercase_index(*db);
        } catch (const std::exception& e) {
            return {std::nullopt,
                    "cannot index time zone names for " + quoted(name) + ": " + e.what()};
        }
        auto it = index->find(lowercase(name));
        if (it == index->end()) {
            return unknown(name);
        }
        found = it->second;
    }
    try {
        // The zone library reads a zone's file on first use: do it now, while errors are values.
        found->get_info(sys_seconds{});
    } catch (const std::exception& e) {
        return {std::nullopt, "cannot load time zone " + quoted(name) + ": " + e.what()};
    }
    return {zone_access::make(found), {}};
}

std::string_view zone::name() const
{
    return zone_access::native(*this).name();
}

std::chrono::seconds zone::utc_offset(sys_seconds time) const
{
    return period_at(zone_access::native(*this), time).offset;
}

bool zone::is_dst(sys_seconds time) const
{
    return period_at(zone_access::native(*this), time).dst;
}

std::chrono::seconds zone::standard_offset(sys_seconds time) const
{
    const auto& z = zone_access::native(*this);
    return standard_offset_of(z, period_at(z, time));
}

std::chrono::local_seconds zone::to_local(sys_seconds time) const
{
    time = clamp_instant(time);
    return std::chrono::local_seconds{(time + utc_offset(time)).time_since_epoch()};
}

local_info zone::classify(std::chrono::local_seconds time) const
{
    time = clamp_local(time);
    auto info = zone_access::native(*this).get_info(date::local_seconds{time.time_since_epoch()});
    sys_seconds as_utc{time.time_since_epoch()};
    switch (info.result) {
    case date::local_info::nonexistent:
        return {local_kind::nonexistent, info.first.end,
                info.first.end,          info.first.offset,
                info.second.offset,      info.second.offset - info.first.offset};
    case date::local_info::ambiguous:
        return {local_kind::ambiguous, as_utc - info.first.offset, as_utc - info.second.offset,
                info.first.offset,     info.second.offset,         seconds{0}};
    default:
        return {local_kind::unique, as_utc - info.first.offset, as_utc - info.first.offset,
                info.first.offset,  info.first.offset,          seconds{0}};
    }
}

std::optional<sys_seconds> zone::to_utc(std::chrono::local_seconds time,
                                        resolve_policy policy) const
{
    auto info = classify(time);
    switch (info.kind) {
    case local_kind::unique:
        return info.first;
    case local_kind::nonexistent:
        switch (policy.gap) {
        case gap_policy::shift_forward:
            return sys_seconds{clamp_local(time).time_since_epoch()} - info.offset_before;
        case gap_policy::transition:
            return info.first;
        case gap_policy::reject:
            return std::nullopt;
        }
        return std::nullopt;
    case local_kind::ambiguous:
        switch (policy.overlap) {
        case overlap_policy::earliest:
            return info.first;
        case overlap_policy::latest:
            return info.second;
        case overlap_policy::reject:
            return std::nullopt;
        }
        return std::nullopt;
    }
    return std::nullopt;
}

std::optional<transition> zone::next_transition(sys_seconds after) const
{
    const auto& z = zone_access::native(*this);
    period current = period_at(z, after);
    for (auto q = next(z, current); q; q = next(z, *q)) {
        if (!same_observable(current, *q)) {
            return transition{q->begin, current.offset, q->offset, current.dst, q->dst};
        }
    }
    return std::nullopt;
}

std::vector<dst_interval> zone::dst_intervals(sys_seconds from, sys_seconds to) const
{
    const auto& z = zone_access::native(*this);
    std::vector<dst_interval> out;
    if (from >= to) {
        return out;
    }
    for (std::optional<period> p = period_at(z, from); p && p->begin < to; p = next(z, *p)) {
        if (p->dst) {
            out.push_back(dst_stretch(z, *p));
            // Jump to the stretch's last period: the loop steps past it.
            p = period_at(z, out.back().end - seconds{1});
        }
    }
    return out;
}

std::vector<dst_interval> zone::dst_intervals(std::chrono::year year) const
{
    if (!year.ok()) {
        return {};
    }
    sys_seconds from{std::chrono::sys_days{year / std::chrono::January / 1}};
    return dst_intervals(from, from + std::chrono::days{year.is_leap() ? 366 : 365});
}

int zone::time_zone_option(sys_seconds time) const
{
    return protocol::time_zone_option(utc_offset(time));
}

std::string zone::server_tz(sys_seconds time) const
{
    return protocol::format_offset_hhmm(utc_offset(time));
}

} // namespace adms::tz
