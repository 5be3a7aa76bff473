#pragma once

#include "server/config/settings.hpp"

#include <string>
#include <string_view>
#include <toml++/toml.h>

namespace adms::server {

// Whether `name` can name a webhook endpoint or an export in a URL path: 1 to 64 letters,
// digits, '-', '_' or '.'.
bool valid_endpoint_name(std::string_view name);

// Reads the config file's [webhooks.<name>] tables into s.webhooks; a one-line error naming the
// table and key, or empty.
std::string apply_webhooks(settings& s, const toml::table& webhooks);

} // namespace adms::server
