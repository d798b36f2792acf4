-- PipeWire ASIO Bridge (WirePlumber 0.4): link every ASIO bridge node to the
-- default sink and source, and follow the defaults when they change.
-- Per bridge: node.autoconnect = false opts out, target.object pins.
-- To turn it off for every bridge, put an empty file of this same name in
-- ~/.config/wireplumber/policy.lua.d/.
load_script("asio-bridge-autoconnect.lua")
