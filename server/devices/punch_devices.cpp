#include "server/devices/punch_devices.hpp"

#include "server/devices/device_service.hpp"

#include <map>
#include <memory>

namespace adms::server {

tz::zone zone_in_force(const device_snapshot& device)
{
    auto found = tz::locate_zone(device.zone_name);
    return found ? *found.value : *tz::locate_zone("UTC").value;
}

device_lookup make_device_lookup(const device_service& devices)
{
    auto known = std::make_shared<std::map<std::string, punch_device, std::less<>>>();
    for (const auto& d : devices.devices()) {
        known->emplace(d.record.serial_number, punch_device{api_id(d.record), zone_in_force(d)});
    }
    return [known](const stored_punch& p) -> punch_device {
        if (auto it = known->find(p.serial_number); it != known->end()) {
            return it->second;
        }
        return {p.serial_number, *tz::locate_zone("UTC").value};
    };
}

} // namespace adms::server
