#pragma once

#include "protocol/parse_result.hpp"

#include <optional>
#include <string>
#include <vector>

namespace adms::protocol {

// The TransFlag string form (reference §1.1): names the tables the device uploads. The bit form's
// order differs between documents, so admsd always sends this one.
inline constexpr const char* default_trans_flag =
    "TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tUserPic";

// What the server answers to `GET /iclock/cdata?SN=…&options=all` (ATT dialect). The server fills
// it in; render_handshake() turns it into the reply body. Defaults are the common field values.
struct handshake_reply {
    std::string serial_number;
    // True when the device sent no `pushver` (PUSH 1.0 firmware): the stamps are then named
    // `Stamp`, `OpStamp`, `PhotoStamp` instead of `ATTLOGStamp`, `OPERLOGStamp`, `ATTPHOTOStamp`.
    bool legacy_stamp_names = false;
    std::string attlog_stamp = "None";       // the device's own last stamp; "0" asks for everything
    std::string operlog_stamp = "None";      // idem for OPERLOG
    std::string attphoto_stamp = "None";     // idem for ATTPHOTO
    std::vector<key_value> more_stamps;      // e.g. {"BIODATAStamp", "…"}; sent only when present
    int error_delay = 30;                    // seconds between retries after a network failure
    int delay = 10;                          // seconds between getrequest polls
    std::string trans_times = "00:00;14:05"; // fixed upload times hh:mm;hh:mm
    int trans_interval = 1;                  // minutes between upload checks, 0 = off
    std::string trans_flag = default_trans_flag;
    int time_zone = 0;    // TimeZone= (protocol::time_zone_option: hours, or minutes beyond +-60)
    bool realtime = true; // push each new record immediately
    std::string encrypt = "None";
    std::string server_version = "2.4.1";        // ServerVer=
    std::string push_protocol_version = "2.4.1"; // PushProtVer=
    std::optional<int> push_options_flag;        // PushOptionsFlag=1 asks the device for options
    std::string push_options;                    // PushOptions=key,key,… (sent when not empty)
};

// Renders the handshake reply: `GET OPTION FROM: <SN>` then one `key=value` line per option,
// joined by LF. CR and LF inside a value are replaced by spaces so no value can add a line.
std::string render_handshake(const handshake_reply& reply);

// What the server answers to `POST /iclock/push` (SEC dialect, push 3.x): its push parameters.
struct push_reply {
    int error_delay = 30;   // ErrorDelay=
    int delay = 10;         // RequestDelay=
    std::string session_id; // SessionID= (admsd sends the device's registry code)
};

// Renders the push reply: `ServerVersion=3.0.1`, … one `key=value` line per parameter, joined by
// LF. CR and LF in the session id are replaced by spaces.
std::string format_push_reply(const push_reply& reply);

} // namespace adms::protocol
