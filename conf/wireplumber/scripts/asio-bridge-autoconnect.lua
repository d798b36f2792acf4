-- PipeWire ASIO Bridge: autoconnect (a WirePlumber script).
--
-- Links every bridge node (factory.name = api.asio.bridge) to the default
-- devices, the way a JACK client is autoconnected to the system ports:
--   out_1..out_M  ->  the default sink's playback ports, in its channel order
--   the default source's capture ports, in its channel order  ->  in_1..in_N
-- and moves those links when the default changes.
--
-- Per bridge node, from its properties:
--   node.autoconnect = false    no links at all (the node also shows false
--                               while a DAW that opted out holds it)
--   target.object = <name>      node.name or object.serial of a device to use
--                               instead of the default: a sink pins the out_*
--                               side, a source the in_* side, a duplex node
--                               both. A list pins several:
--                               target.object = [ my-sink my-source ]
--                               While a pinned device is absent, its side
--                               stays unlinked (both sides, for one never
--                               seen) until it appears.
--   At runtime: pw-metadata <bridge id> target.object <name> pins the
--   same way and wins over the property; pw-metadata -- <bridge id>
--   target.object -1 follows the defaults; pw-metadata -d <bridge id>
--   target.object goes back to the property.
--
-- Only links this script made are ever removed. A link that already joins
-- two ports (made by hand, by qpwgraph, ...) is left alone and not made
-- twice. A link of ours that someone else removes is not made again until
-- that side's device changes. The links are not lingering objects: they go
-- when WirePlumber exits, and the next WirePlumber makes them again.
--
-- Works with WirePlumber 0.4 (loaded by policy.lua.d/
-- 90-asio-bridge-autoconnect.lua) and 0.5 (a component in wireplumber.conf.d/
-- 90-asio-bridge-autoconnect.conf). Install only the loader for your
-- version: WirePlumber 0.4 also reads wireplumber.conf.d fragments (seen
-- with PipeWire 0.3.65), and with both it would run this script twice.
--
-- Its links carry asio-bridge.autoconnect = true (pw-dump shows it).

local BRIDGE_FACTORY = "api.asio.bridge"

local function log(msg)
  Log.info("asio-bridge-autoconnect: " .. msg)
end

bridges_om = ObjectManager {
  Interest {
    type = "node",
    Constraint { "factory.name", "=", BRIDGE_FACTORY, type = "pw" },
  }
}

devices_om = ObjectManager {
  Interest {
    type = "node",
    Constraint { "media.class", "matches", "Audio/*", type = "pw-global" },
  }
}

ports_om = ObjectManager { Interest { type = "port" } }

links_om = ObjectManager { Interest { type = "link" } }

metadata_om = ObjectManager {
  Interest {
    type = "metadata",
    Constraint { "metadata.name", "=", "default" },
  }
}

-- Per bridge node id: the links this script made and which device each
-- side was last linked to.
--   state[bridge] = {
--     links = { [key] = { proxy = Link, id = global id or nil, side = "out"|"in" } },
--     device = { out = device node id or nil, ["in"] = ... },
--     refused = { [key] = side },   -- ours, removed by someone else
--   }
-- key: "<output port id>><input port id>"
local state = {}

local function bridge_state(id)
  local s = state[id]
  if not s then
    s = { links = {}, device = {}, refused = {} }
    state[id] = s
  end
  return s
end

local function parse_bool(v, default)
  if v == nil then
    return default
  end
  return v == "true" or v == "1" or v == "yes"
end

-- "{ \"name\": \"sink-a\" }" -> "sink-a"
local function default_name(key)
  local metadata = metadata_om:lookup()
  if not metadata then
    return nil
  end
  local value = metadata:find(0, key)
  if not value then
    return nil
  end
  local ok, parsed = pcall(function () return Json.Raw(value):parse() end)
  if ok and type(parsed) == "table" and type(parsed.name) == "string" then
    return parsed.name
  end
  return value:match('"name"%s*:%s*"([^"]*)"')
end

-- target.object: one name or serial, or a SPA-JSON list of them.
-- The "default" metadata's target.object for the bridge node (set with
-- pw-metadata, as for moving a stream) wins over its property; "-1" there
-- means the defaults.
local function pinned_targets(id, props)
  local value = props["target.object"]
  local metadata = metadata_om:lookup()
  local moved = metadata and metadata:find(id, "target.object")
  if moved ~= nil then
    value = moved
  end
  if value == nil or value == "" or value == "-1" then
    return {}
  end
  if value:match("^%s*%[") then
    local names = {}
    for item in value:gmatch('[^%[%]%s,"]+') do
      table.insert(names, item)
    end
    return names
  end
  return { value }
end

local function find_device(name)
  for node in devices_om:iterate() do
    local p = node.properties
    if p["node.name"] == name or p["object.serial"] == name then
      return node
    end
  end
  return nil
end

-- The ports of node `id` in direction "in" or "out", in the node's own
-- order (port.id follows the channel positions). Monitor ports are left
-- out, except a source's: a virtual source's capture ports are monitors.
local function node_ports(id, direction, media_class)
  local monitors = media_class ~= nil and media_class:find("^Audio/Source") ~= nil
  local ports = {}
  for port in ports_om:iterate() do
    local p = port.properties
    if tonumber(p["node.id"]) == id and p["port.direction"] == direction
        and (monitors or not parse_bool(p["port.monitor"], false)) then
      table.insert(ports, port)
    end
  end
  table.sort(ports, function (a, b)
    return (tonumber(a.properties["port.id"]) or 0) < (tonumber(b.properties["port.id"]) or 0)
  end)
  return ports
end

local function device_class(id)
  for node in devices_om:iterate() do
    if node["bound-id"] == id then
      return node.properties["media.class"]
    end
  end
  return nil
end

-- The sides of a bridge a device can serve: a sink plays its out_*, a
-- source feeds its in_*, a duplex device both.
local function serves(device)
  local class = device.properties["media.class"] or ""
  local duplex = class:find("^Audio/Duplex") ~= nil
  return {
    out = duplex or class:find("^Audio/Sink") ~= nil,
    ["in"] = duplex or class:find("^Audio/Source") ~= nil,
  }
end

-- Which sides each pinned device serves, by the name it was pinned with,
-- remembered so a pinned device that goes away keeps its side(s) unlinked.
local pinned_sides = {}

-- The device each side of a bridge links to: its pins, else the defaults.
local function sides(id, props)
  local chosen = {}
  local pinned = {}
  for _, name in ipairs(pinned_targets(id, props)) do
    local device = find_device(name)
    if device then
      local sides_of = serves(device)
      pinned_sides[name] = sides_of
      for side, yes in pairs(sides_of) do
        if yes then pinned[side] = device["bound-id"] end
      end
    else
      -- Absent: the side(s) it served stay unlinked until it is back; one
      -- never seen could serve either.
      local serves = pinned_sides[name] or { out = true, ["in"] = true }
      for side, yes in pairs(serves) do
        if yes and pinned[side] == nil then pinned[side] = false end
      end
    end
  end
  for side, key in pairs({ out = "default.audio.sink", ["in"] = "default.audio.source" }) do
    if pinned[side] ~= nil then
      chosen[side] = pinned[side] or nil
    else
      local name = default_name(key)
      local device = name and find_device(name)
      chosen[side] = device and serves(device)[side] and device["bound-id"] or nil
    end
  end
  return chosen
end

-- Pairs (output port, input port) from `from` ports to `to` ports: one to
-- one in order; a mono device feeds or takes every bridge channel.
local function pairs_of(from, to)
  local result = {}
  if #from == 0 or #to == 0 then
    return result
  end
  if #from == 1 then
    for _, t in ipairs(to) do table.insert(result, { from[1], t }) end
  elseif #to == 1 then
    for _, f in ipairs(from) do table.insert(result, { f, to[1] }) end
  else
    for i = 1, math.min(#from, #to) do table.insert(result, { from[i], to[i] }) end
  end
  return result
end

local function existing_links()
  local existing = {}
  for link in links_om:iterate() do
    local p = link.properties
    local key = tostring(p["link.output.port"]) .. ">" .. tostring(p["link.input.port"])
    existing[key] = link["bound-id"]
  end
  return existing
end

local function rescan_bridge(bridge, existing)
  local id = bridge["bound-id"]
  local props = bridge.properties
  local s = bridge_state(id)
  local wanted = {}

  if parse_bool(props["node.autoconnect"], true) then
    local chosen = sides(id, props)
    for _, side in ipairs({ "out", "in" }) do
      local device = chosen[side]
      if s.device[side] ~= device then
        -- A new device for this side: forget what was refused on the old.
        for key, refused_side in pairs(s.refused) do
          if refused_side == side then s.refused[key] = nil end
        end
        s.device[side] = device
      end
      if device then
        local pairs_list
        if side == "out" then
          pairs_list = pairs_of(node_ports(id, "out"), node_ports(device, "in", device_class(device)))
        else
          pairs_list = pairs_of(node_ports(device, "out", device_class(device)), node_ports(id, "in"))
        end
        for _, pair in ipairs(pairs_list) do
          local o, i = pair[1], pair[2]
          local key = o["bound-id"] .. ">" .. i["bound-id"]
          wanted[key] = { side = side, o = o, i = i }
        end
      end
    end
  else
    s.device = {}
  end

  -- Remove our links that are no longer wanted.
  for key, mine in pairs(s.links) do
    if not wanted[key] then
      s.links[key] = nil
      log("unlinking " .. key)
      if mine.id then
        mine.proxy:request_destroy()
      end
    end
  end

  -- Make the wanted ones nobody has made yet.
  for key, want in pairs(wanted) do
    if not s.links[key] and not s.refused[key] and not existing[key] then
      local o, i = want.o, want.i
      local link = Link("link-factory", {
        ["link.output.node"] = o.properties["node.id"],
        ["link.output.port"] = o["bound-id"],
        ["link.input.node"] = i.properties["node.id"],
        ["link.input.port"] = i["bound-id"],
        ["object.linger"] = false,
        ["asio-bridge.autoconnect"] = true,
      })
      local mine = { proxy = link, side = want.side }
      s.links[key] = mine
      log("linking " .. o.properties["port.name"] .. " -> " .. i.properties["port.name"] .. " (" .. key .. ")")
      link:activate(Feature.Proxy.BOUND, function (l, e)
        if e then
          log("link " .. key .. " failed: " .. tostring(e))
          if s.links[key] == mine then s.links[key] = nil end
        elseif s.links[key] ~= mine then
          -- Unwanted while it was being made.
          l:request_destroy()
        else
          mine.id = l["bound-id"]
        end
      end)
    end
  end
end

local pending = false

local function rescan()
  pending = false
  local existing = existing_links()
  local present = {}
  for bridge in bridges_om:iterate() do
    present[bridge["bound-id"]] = true
    rescan_bridge(bridge, existing)
  end
  -- Bridges gone: their links went with their ports.
  for id in pairs(state) do
    if not present[id] then state[id] = nil end
  end
end

local function schedule()
  if not pending then
    pending = true
    Core.idle_add(function ()
      rescan()
      return false
    end)
  end
end

-- A link of ours removed by someone else: not made again for that device.
links_om:connect("object-removed", function (_, link)
  local gone = link["bound-id"]
  for _, s in pairs(state) do
    for key, mine in pairs(s.links) do
      if mine.id == gone then
        s.links[key] = nil
        s.refused[key] = mine.side
        log("link " .. key .. " was removed by someone else; leaving it")
      end
    end
  end
  schedule()
end)

for _, om in ipairs({ bridges_om, devices_om, ports_om }) do
  om:connect("object-added", schedule)
  om:connect("object-removed", schedule)
end

-- A bridge's properties change at runtime: node.autoconnect is false while
-- a DAW that asked to stay unlinked holds it, and true again when it leaves.
bridges_om:connect("object-added", function (_, bridge)
  bridge:connect("notify::properties", schedule)
end)

metadata_om:connect("object-added", function (_, metadata)
  metadata:connect("changed", function (_, subject, key)
    if key == nil or key == "target.object"
        or (subject == 0 and (key == "default.audio.sink" or key == "default.audio.source")) then
      schedule()
    end
  end)
  schedule()
end)

for _, om in ipairs({ metadata_om, links_om, ports_om, devices_om, bridges_om }) do
  om:activate()
end
