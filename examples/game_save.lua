-- game_save.lua -- a game that saves its world state every frame.
--
-- The world is a set of entities (the player, monsters, items on the
-- ground) in one save slot: partition key = the slot, sort key = the
-- entity id, one item per entity plus a "meta" item (frame counter, seed).
--   * At start the game loads the slot with one query.
--   * Every frame it writes only what changed -- moved entities, spawned
--     ones, despawned ones -- in one batch: one transaction per frame, so a
--     save is never half a frame, whatever happens.
--   * sync = "normal": a crash of the game loses nothing; a crash of the
--     whole machine may lose the last frame or so, never corrupt the save
--     (see the README's durability modes).  A game engine usually prefers
--     this to an fsync per frame.
-- The example plays 120 frames, quits, restarts and checks that the world it
-- loads is exactly the world it left; then it shows that a frame whose save
-- fails half-way leaves the previous frame's save intact.
local dynafile = require "dynafile"

local dir = os.tmpname()
os.remove(dir)
local SLOT = "slot#1"

local function open_save()
  return assert(dynafile.open(dir, { pk = "slot", sk = "id", sync = "normal" }))
end

-- A tiny deterministic random generator, so every run plays the same game.
local function rng(seed)
  local s = seed
  return function(n)
    s = (s * 16807) % 2147483647 -- exact in doubles too (LuaJIT, Lua 5.1)
    return math.floor(s / 2147483647 * n) + 1
  end
end

-- Load the world: every entity of the slot, and the meta item.
local function load(db)
  local world = { entities = {}, frame = 0, seed = 7 }
  for item in db:query(SLOT) do
    if item.id == "meta" then
      world.frame, world.seed = item.frame, item.seed
    else
      world.entities[item.id] = item
    end
  end
  return world
end

-- One frame of game logic.  Returns the ids it changed and despawned.
local next_id = 0
local function step(world, rand)
  local changed, gone = {}, {}
  world.frame = world.frame + 1
  local ids = {}
  for id in pairs(world.entities) do ids[#ids + 1] = id end
  table.sort(ids) -- a fixed order, so the same seed plays the same game
  for _, id in ipairs(ids) do
    local e = world.entities[id]
    if e.kind == "monster" then
      e.pos.x = e.pos.x + (rand(3) - 2) * 0.5
      e.pos.y = e.pos.y + (rand(3) - 2) * 0.5
      changed[#changed + 1] = id
      if rand(40) == 1 then -- the player hits it
        e.hp = e.hp - 10
        if e.hp <= 0 then gone[#gone + 1] = id end
      end
    end
  end
  if rand(10) == 1 then -- a monster spawns
    next_id = next_id + 1
    local id = string.format("monster#%04d", next_id)
    world.entities[id] = { slot = SLOT, id = id, kind = "monster", hp = 30,
                           pos = { x = rand(100) * 1.0, y = rand(100) * 1.0 },
                           loot = { "coin", rand(5) == 1 and "gem" or nil } }
    changed[#changed + 1] = id
  end
  local p = world.entities.player
  p.pos.x = p.pos.x + 1.25
  p.inventory.coins = p.inventory.coins + #gone
  changed[#changed + 1] = "player"
  for _, id in ipairs(gone) do world.entities[id] = nil end
  return changed, gone
end

-- Save one frame: everything it changed, in one transaction.
local function save(db, world, changed, gone)
  return db:batch_write(function(w)
    for _, id in ipairs(changed) do
      local e = world.entities[id]
      if e then w:put_item(e) end
    end
    for _, id in ipairs(gone) do w:delete_item { slot = SLOT, id = id } end
    w:put_item { slot = SLOT, id = "meta", frame = world.frame, seed = world.seed }
  end)
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- First start: an empty slot, so a new world.
local db = open_save()
local world = load(db)
assert(world.frame == 0 and next(world.entities) == nil)
world.entities.player = {
  slot = SLOT, id = "player", kind = "player", hp = 100,
  pos = { x = 0.0, y = 0.0 },
  inventory = { coins = 0, items = dynafile.array() }, -- stored as an empty list
}
local rand = rng(world.seed)
local despawned = 0
for _ = 1, 120 do
  local changed, gone = step(world, rand)
  despawned = despawned + #gone
  assert(save(db, world, changed, gone))
end
db:close()
print(string.format("played 120 frames: %d entities, %d despawned",
                    count(world.entities), despawned))
assert(count(world.entities) > 5 and despawned > 0, "the game should have done something")

-- Restart: the loaded world is exactly the one we left.
db = open_save()
local loaded = load(db)
assert(loaded.frame == 120)
assert(same(loaded.entities, world.entities), "the loaded world differs from the saved one")
assert(loaded.entities.player.pos.x == 150.0)
assert(#loaded.entities.player.inventory.items == 0) -- an empty list stays a list
assert(db:stat().items == count(world.entities) + 1, "one item per entity, plus meta")

-- A frame whose save fails half-way (here the game code raises while the
-- batch is being built) is discarded whole: the save still holds frame 120.
assert(save(db, loaded, step(loaded, rng(99)))) -- frame 121 saves normally
local before = load(db)
local ok, err = pcall(db.batch_write, db, function(w)
  w:put_item { slot = SLOT, id = "meta", frame = 999, seed = 0 }
  w:put_item { slot = SLOT, id = "player", kind = "player", pos = { x = -1 } }
  error("the game crashed while saving")
end)
assert(not ok and err:find("crashed while saving"))
local after = load(db)
assert(after.frame == before.frame and after.frame == 121)
assert(same(after.entities, before.entities), "a failed frame left traces")
print("a failed save left frame " .. after.frame .. " intact")

db:close()
os.execute("rm -rf '" .. dir .. "'")
print("game_save: ok")
