#pragma once

#include "protocol/ntp_packet.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace adms::server {

// The kernel's view of the host clock (ntp_adjtime with no modes): what the host's NTP daemon
// (chrony, ntpd, systemd-timesyncd) last told it, aged by the kernel since.
struct host_clock_status {
    bool synchronised = false; // the call returned neither TIME_ERROR nor STA_UNSYNC
    bool insert_leap = false;  // STA_INS: a second is inserted at the end of this UTC day
    bool delete_leap = false;  // STA_DEL: a second is deleted at the end of this UTC day
    // The kernel's bound on the clock's error; it grows by 500 µs every second until the daemon
    // sets it again, and at 16 s the kernel declares the clock unsynchronised.
    std::chrono::microseconds max_error{16'000'000};
    std::chrono::microseconds estimated_error{16'000'000};
    int state = 0;     // the return value: TIME_OK, TIME_INS, …, TIME_ERROR (5)
    int status = 0;    // the STA_* bits
    std::string error; // why the call failed (then not synchronised)
};

// Reads the kernel's clock synchronisation state. Changes nothing and needs no privilege.
host_clock_status read_host_clock();

// The resolution of the realtime clock (clock_getres(CLOCK_REALTIME)).
std::chrono::nanoseconds host_clock_resolution();

// When the host clock was last corrected, as far as admsd can tell: the kernel does not say.
// It is the moment a reading showed the kernel's maxerror lower than the reading before (the
// daemon set it: an update); until one is seen, the earliest moment the current maxerror allows
// (now − maxerror / 500 µs·s⁻¹, as if the daemon had set it to 0), so it is never fresher than
// the evidence.
// Thread safety: every member function may be called from any thread.
class host_clock_reference {
  public:
    // Takes one reading made at `now`.
    void observe(const host_clock_status& status, protocol::ntp_time now);

    // The reference time so far; nullopt before a synchronised reading.
    std::optional<protocol::ntp_time> reference() const;

  private:
    mutable std::mutex mutex_;
    std::optional<std::chrono::microseconds> last_max_error_;
    std::optional<protocol::ntp_time> reference_;
};

// The strata admsd serves the host clock at.
struct ntp_strata {
    // While the kernel says synchronised (2..15): admsd cannot see its upstream's stratum, so
    // this is configured (default 4: pool servers at 2, the host at 3, admsd at 4).
    unsigned synchronised = 4;
    // While it does not (1..15; 0 = answer stratum 16 instead), as chrony's `local stratum`.
    unsigned local = 0;
};

// What the replies claim about the served clock.
struct ntp_claim {
    protocol::ntp_leap leap = protocol::ntp_leap::alarm;
    std::uint8_t stratum = 16;
    std::array<std::uint8_t, 4> reference_id{};
    std::chrono::nanoseconds root_dispersion{0};
    std::optional<protocol::ntp_time> reference;
};

// The reference ID of a reply relaying a synchronised host clock: 127.0.0.1, "the host".
inline constexpr std::array<std::uint8_t, 4> host_reference_id{127, 0, 0, 1};
// The reference ID of the local-stratum mode.
inline constexpr std::array<std::uint8_t, 4> local_reference_id{'L', 'O', 'C', 'L'};

// The honest claim for `status`: synchronised → the kernel's leap flags, strata.synchronised,
// 127.0.0.1, dispersion = maxerror, `reference`; unsynchronised with a local stratum → leap 0,
// that stratum, "LOCL", dispersion 0, reference `now`; else alarm (leap 3), stratum 16, ID 0.
ntp_claim claim_for(const host_clock_status& status, std::optional<protocol::ntp_time> reference,
                    ntp_strata strata, protocol::ntp_time now);

} // namespace adms::server
