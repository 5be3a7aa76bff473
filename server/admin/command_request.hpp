#pragma once

// The body of `POST /devices/{id}/commands`, turned into a command text for the device's queue.

#include "server/http/json_input.hpp"

#include <boost/json/object.hpp>

#include <string>

namespace adms::server {

// A command an admin asked for: its name (stored as the kind "admin: <name>") and its text.
struct command_request {
    std::string name; // e.g. "user_upsert"
    std::string text; // e.g. "DATA UPDATE USERINFO PIN=1\tName=Ann\tPri=0", without `C:<id>:`
};

// Reads `{"command": "<name>", ...fields}`. Names and their fields:
//   reboot, info, check, log, clear_log       no other fields
//   user_upsert   pin (string or integer), name?, privilege?, password?, card? (string or
//                 integer), group?, verify?
//   user_delete   pin (string or integer)
//   query_attlog  from, to: device wall-clock "YYYY-MM-DD HH:MM:SS", "YYYY-MM-DDTHH:MM:SS" or
//                 "YYYY-MM-DD" (00:00:00 for from, 23:59:59 for to); no 'Z', no offset
//   set_option    name, value (string or integer)
// An integer PIN or card loses its leading zeros: send a string to keep them. A JSON null is an
// absent field. Errors name the field: a missing or unknown command, an unknown field, a missing
// required field, a wrong type, or a value the command builders refuse.
input_result<command_request> parse_command_request(const boost::json::object& body);

} // namespace adms::server
