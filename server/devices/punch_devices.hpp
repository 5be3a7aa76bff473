#pragma once

#include "server/records/punch_format.hpp"
#include "tz/zone.hpp"

namespace adms::server {

class device_service;
struct device_snapshot;

// The zone in force for a device (UTC should its name have left the zone database).
tz::zone zone_in_force(const device_snapshot& device);

// Each punch's device as punch rows show it (API id and zone), from the devices known now: the
// admin API's punch reads and the payroll exports share it, so their rows agree. A device no
// longer known shows as its serial number in UTC. A copy: later registry changes do not show.
device_lookup make_device_lookup(const device_service& devices);

} // namespace adms::server
