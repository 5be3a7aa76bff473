#pragma once

// Reading the config file's [exports.<name>] tables. Kept apart from export_settings.hpp so
// that only the config file's reader includes toml++.

#include "server/config/export_settings.hpp"

#include <string>
#include <toml++/toml.h>

namespace adms::server {

// Reads the `exports` node of the config file (a table of [exports.<name>] tables) into
// `exports`. Returns one line naming the table and key at fault, or empty on success. Every key
// must be known (at, directory, format) and a string; at and directory are required.
std::string read_export_tables(const toml::node& node, export_table& exports);

} // namespace adms::server
