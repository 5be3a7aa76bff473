#include "protocol/handshake.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace adms::protocol {
namespace {

// Appends `\nkey=value`, with any CR or LF in the value replaced by a space.
void append_option(std::string& out, std::string_view key, std::string_view value)
{
    out += '\n';
    out += key;
    out += '=';
    std::replace_copy_if(
        value.begin(), value.end(), std::back_inserter(out),
        [](char c) { return c == '\n' || c == '\r'; }, ' ');
}

void append_option(std::string& out, std::string_view key, int value)
{
    append_option(out, key, fmt::format_int(value).str());
}

} // namespace

std::string render_handshake(const handshake_reply& reply)
{
    std::string out = "GET OPTION FROM: ";
    out += reply.serial_number;
    bool legacy = reply.legacy_stamp_names;
    append_option(out, legacy ? "Stamp" : "ATTLOGStamp", reply.attlog_stamp);
    append_option(out, legacy ? "OpStamp" : "OPERLOGStamp", reply.operlog_stamp);
    append_option(out, legacy ? "PhotoStamp" : "ATTPHOTOStamp", reply.attphoto_stamp);
    for (const auto& stamp : reply.more_stamps) {
        append_option(out, stamp.key, stamp.value);
    }
    append_option(out, "ErrorDelay", reply.error_delay);
    append_option(out, "Delay", reply.delay);
    append_option(out, "TransTimes", reply.trans_times);
    append_option(out, "TransInterval", reply.trans_interval);
    append_option(out, "TransFlag", reply.trans_flag);
    append_option(out, "TimeZone", reply.time_zone);
    append_option(out, "Realtime", reply.realtime ? 1 : 0);
    append_option(out, "Encrypt", reply.encrypt);
    append_option(out, "ServerVer", reply.server_version);
    append_option(out, "PushProtVer", reply.push_protocol_version);
    if (reply.push_options_flag) {
        append_option(out, "PushOptionsFlag", *reply.push_options_flag);
    }
    if (!reply.push_options.empty()) {
        append_option(out, "PushOptions", reply.push_options);
    }
    return out;
}

std::string format_push_reply(const push_reply& reply)
{
    // The first line has no leading LF; append_option starts each line with one.
    std::string out = "ServerVersion=3.0.1";
    append_option(out, "ServerName", "ADMS");
    append_option(out, "PushVersion", "3.0.1");
    append_option(out, "ErrorDelay", reply.error_delay);
    append_option(out, "RequestDelay", reply.delay);
    append_option(out, "TransTimes", "00:00;14:00");
    append_option(out, "TransInterval", 1);
    append_option(out, "TransTables", "User Transaction");
    append_option(out, "Realtime", 1);
    append_option(out, "SessionID", reply.session_id);
    append_option(out, "TimeoutSec", 10);
    return out;
}

} // namespace adms::protocol
