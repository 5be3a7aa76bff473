#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// IANA time zones on std::chrono types. The zone library (Howard Hinnant's date/tz, reading the
// OS tzdata) stays inside zone.cpp, so moving to std::chrono::locate_zone touches one file.
//
// Pure: never reads the clock ("now" is always a parameter), does no file I/O of its own (the
// zone library loads /usr/share/zoneinfo lazily) and does not throw on bad input.
//
// Range: instants are clamped to the years -32767..32767 the zone library supports, so extreme
// inputs (sys_seconds::max()) give the answer for that edge instead of overflowing.
// Data limits of the OS database as the zone library reads it: TZif files are used up to their
// last listed transition (2037 for Debian's tzdata); the rule footer is not applied, so later
// instants keep the last offset. The DST flag is the file's isdst bit, and it can be negative
// DST: Europe/Dublin flags its winter GMT as DST (standard time there is IST, +1:00).
namespace adms::tz {

// How locate_zone compares names.
enum class name_match {
    exact,       // "Asia/Shanghai" only
    ignore_case, // "asia/shanghai" finds "Asia/Shanghai" (ASCII case folding)
};

// How a wall-clock time maps onto the UTC timeline in one zone.
enum class local_kind {
    unique,      // exactly one instant
    nonexistent, // skipped by a forward transition (a DST gap)
    ambiguous,   // repeated by a backward transition (a DST overlap): two instants
};

// Where a wall-clock time falls on the UTC timeline (ambiguity reported as data).
struct local_info {
    local_kind kind = local_kind::unique;
    // unique: the instant; ambiguous: the earlier instant; nonexistent: the transition instant
    // (where the gap starts, e.g. 07:00 UTC for New York 2025-03-09 02:30).
    std::chrono::sys_seconds first{};
    // ambiguous: the later instant; otherwise equal to `first`.
    std::chrono::sys_seconds second{};
    // The UTC offsets before and after the transition (for ambiguous: the offsets of `first` and
    // `second`); unique: both the offset in force.
    std::chrono::seconds offset_before{};
    std::chrono::seconds offset_after{};
    // nonexistent: the length of the skipped wall-clock range (offset_after - offset_before);
    // otherwise zero.
    std::chrono::seconds gap{};
    friend bool operator==(const local_info&, const local_info&) = default;
};

// What to do with a wall-clock time inside a gap.
enum class gap_policy {
    reject,        // no instant (nullopt)
    shift_forward, // read it with the offset before the gap: NY 02:30 -> 03:30 EDT = 07:30 UTC
    transition,    // the instant the gap starts: NY 02:30 -> 07:00 UTC
};

// What to do with a wall-clock time inside an overlap.
enum class overlap_policy {
    reject,   // no instant (nullopt)
    earliest, // the first occurrence (still on the earlier offset): NY 01:30 -> 05:30 UTC
    latest,   // the second occurrence (on the later offset): NY 01:30 -> 06:30 UTC
};

// Both choices for zone::to_utc; there is no default, the caller states both.
struct resolve_policy {
    gap_policy gap;
    overlap_policy overlap;
    constexpr resolve_policy(gap_policy g, overlap_policy o) : gap{g}, overlap{o} {}
};

// A change of UTC offset or of the DST flag.
struct transition {
    std::chrono::sys_seconds at{}; // the first instant with the new offset
    std::chrono::seconds offset_before{};
    std::chrono::seconds offset_after{};
    bool dst_before = false;
    bool dst_after = false;
    friend bool operator==(const transition&, const transition&) = default;
};

// One stretch of DST, [begin, end) on the UTC timeline. Contiguous DST periods merge into one
// interval even when their offsets differ (British double summer time: 1940-02-25 to 1945-10-07
// is one interval); `offset` is then the offset at `begin`, and utc_offset() gives it anywhere
// inside. `end` is 32767-12-31 when the data never ends DST.
struct dst_interval {
    std::chrono::sys_seconds begin{};
    std::chrono::sys_seconds end{};
    std::chrono::seconds offset{};          // the UTC offset at `begin` (standard + saving)
    std::chrono::seconds standard_offset{}; // zone::standard_offset(begin)
    friend bool operator==(const dst_interval&, const dst_interval&) = default;
};

// A handle to one IANA zone: cheap to copy, valid for the whole program (the zone library keeps
// its zone objects alive). Obtained only from locate_zone, so it always refers to a zone.
// Thread safety: immutable; copies may be used from any number of threads at once.
class zone {
  public:
    // The name the zone was found under. Links are files of their own in the OS database, so
    // "US/Eastern" keeps that name (and behaves exactly like "America/New_York").
    std::string_view name() const;

    // The UTC offset in force at `time` (standard time plus any DST saving).
    std::chrono::seconds utc_offset(std::chrono::sys_seconds time) const;

    // Whether the zone observes DST at `time` (the database's isdst flag).
    bool is_dst(std::chrono::sys_seconds time) const;

    // The standard offset at `time`: the offset itself outside DST; during DST the offset of the
    // non-DST period before that DST stretch (the base the saving was added to), or of the one
    // after it when the data has none before. Why not the nearest: London's DST of 1968 ended in
    // +1:00 *standard* time (1968-71), yet its saving was an hour on GMT.
    std::chrono::seconds standard_offset(std::chrono::sys_seconds time) const;

    // The wall-clock time at `time`.
    std::chrono::local_seconds to_local(std::chrono::sys_seconds time) const;

    // Places a wall-clock time on the UTC timeline, reporting gaps and overlaps as data.
    local_info classify(std::chrono::local_seconds time) const;

    // The instant of a wall-clock time; gaps and overlaps resolved as `policy` says (nullopt when
    // the policy rejects).
    std::optional<std::chrono::sys_seconds> to_utc(std::chrono::local_seconds time,
                                                   resolve_policy policy) const;

    // The first transition strictly after `after` that changes the offset or the DST flag
    // (abbreviation-only changes are skipped); nullopt when there is none in the data.
    std::optional<transition> next_transition(std::chrono::sys_seconds after) const;

    // Every DST interval overlapping [from, to), with its real begin and end even outside the
    // range, earliest first. Empty for zones without DST and when `from >= to`.
    std::vector<dst_interval> dst_intervals(std::chrono::sys_seconds from,
                                            std::chrono::sys_seconds to) const;

    // The DST intervals overlapping the UTC year `year` (southern ones cross the new year).
    std::vector<dst_interval> dst_intervals(std::chrono::year year) const;

    // The handshake's `TimeZone=` integer at `time` (protocol::time_zone_option).
    int time_zone_option(std::chrono::sys_seconds time) const;

    // The SEC `ServerTZ=` value at `time`, e.g. "+0530" (protocol::format_offset_hhmm).
    std::string server_tz(std::chrono::sys_seconds time) const;

    // Same zone object (a link and its target are different objects in the OS database).
    friend bool operator==(const zone&, const zone&) = default;

  private:
    friend struct zone_access;
    explicit zone(const void* native) : native_{native} {}
    const void* native_; // a const date::time_zone*, never null
};

// The outcome of a lookup: the zone, or an error message naming what was asked for.
struct zone_lookup {
    std::optional<zone> value;
    std::string error; // empty when found, e.g. "unknown time zone 'Mars/Base'"
    explicit operator bool() const { return value.has_value(); }
};

// Finds an IANA zone or link by name. Empty names, odd characters and "localtime" (the host's
// configured zone, not an IANA name) are unknown. Loads the zone's data, so a broken or missing
// database is reported here and later calls on the zone cannot fail.
zone_lookup locate_zone(std::string_view name, name_match match = name_match::exact);

} // namespace adms::tz
