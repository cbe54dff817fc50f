package rediscluster

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// keys names the keys and channels under the prefix (see the package
// documentation).
type keys struct{ p string }

func (k keys) lease(id string) string   { return k.p + "node:" + id }
func (k keys) leasePrefix() string      { return k.p + "node:" }
func (k keys) nodes() string            { return k.p + "nodes" }
func (k keys) report(id string) string  { return k.p + "report:" + id }
func (k keys) clients(id string) string { return k.p + "clients:" + id }
func (k keys) claim(name string) string { return k.p + "claim:" + name }
func (k keys) fence(name string) string { return k.p + "fence:" + name }
func (k keys) dir() string              { return k.p + "dir" }
func (k keys) dirVersion() string       { return k.p + "dirver" }
func (k keys) cmdAll() string           { return k.p + "cmd" }
func (k keys) cmdNode(id string) string { return k.p + "cmd:" + id }

// instanceOf is the Lua helper that reads the instance out of a lease's
// JSON; nil when the lease is missing or unreadable.
const luaInstanceOf = `
local function instanceOf(v)
  if not v then return nil end
  local ok, d = pcall(cjson.decode, v)
  if ok and type(d) == 'table' and type(d.instance) == 'string' then return d.instance end
  return nil
end
`

// heartbeatScript writes the node's lease, unless another process holds
// the node's ID, and its report and client list (ARGV[5] "1": write
// ARGV[6] and ARGV[7], an empty list deleted; else only extend them).
//
// KEYS: lease, nodes, report, clients. ARGV: instance, lease value, ttl
// ms, node ID, write report, report value, client list.
// Returns {1, report present} or {0, 0} when the ID is another process's.
var heartbeatScript = redis.NewScript(luaInstanceOf + `
local inst = instanceOf(redis.call('GET', KEYS[1]))
if inst and inst ~= ARGV[1] then return {0, 0} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
if ARGV[5] == '1' then
  redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[3])
  if ARGV[7] == '' then
    redis.call('DEL', KEYS[4])
  else
    redis.call('SET', KEYS[4], ARGV[7], 'PX', ARGV[3])
  end
  return {1, 1}
end
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return {1, redis.call('PEXPIRE', KEYS[3], ARGV[3])}
`)

// leaveScript removes the node's lease, report, client list and index
// entry, unless another process holds the node's ID.
//
// KEYS: lease, nodes, report, clients. ARGV: instance, node ID.
var leaveScript = redis.NewScript(luaInstanceOf + `
local inst = instanceOf(redis.call('GET', KEYS[1]))
if inst and inst ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`)

// viewScript reads the registry, the reports and the directory at once,
// read only: {node IDs, their leases, their reports, the directory's
// version, the directory as field, value pairs or nil when its version is
// still ARGV[2]}. The leases and reports are named by the index set, so
// they cannot be declared (a single Redis, not Redis Cluster).
//
// KEYS: nodes, dir, dir version. ARGV: prefix, the version last read.
var viewScript = redis.NewScript(`
local p = ARGV[1]
local ids = redis.call('SMEMBERS', KEYS[1])
local leases, reports = {}, {}
for i, id in ipairs(ids) do
  leases[i] = redis.call('GET', p .. 'node:' .. id)
  reports[i] = redis.call('GET', p .. 'report:' .. id)
end
local ver = redis.call('GET', KEYS[3]) or ''
if ver ~= '' and ver == ARGV[2] then
  return {ids, leases, reports, ver, false}
end
return {ids, leases, reports, ver, redis.call('HGETALL', KEYS[2])}
`)

// luaDirEntry holds the Lua helpers of the directory: dirEntry encodes a
// claim for the directory hash (node, instance, token, fence, grace,
// since and the publisher's JSON, one a line: the JSON last, it may hold
// anything); bumpDir changes the directory's version, which starts from
// Redis's clock in microseconds when missing.
const luaDirEntry = `
local function dirEntry(node, inst, token, fence, grace, since, pub)
  return node .. '\n' .. inst .. '\n' .. token .. '\n' .. fence .. '\n' .. grace .. '\n' .. since .. '\n' .. pub
end
local function bumpDir(k)
  if redis.call('EXISTS', k) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', k, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, 86400000)
end
`

// claimScript claims a stream: refused when the claim is held, not in
// grace, by the live process that made it; else the next fence is taken
// and the claim written, with its directory entry.
//
// KEYS: claim, fence, dir, own lease, dir version. ARGV: node ID,
// instance, token, publisher JSON, ttl ms, fence ttl ms, stream, lease key
// prefix.
// Returns {1, fence, since ms}, {0, holder node} or {-1} when this
// process's lease is missing.
var claimScript = redis.NewScript(luaInstanceOf + luaDirEntry + `
if instanceOf(redis.call('GET', KEYS[4])) ~= ARGV[2] then return {-1} end
local h = redis.call('HMGET', KEYS[1], 'node', 'inst', 'grace')
if h[1] and h[3] ~= '1' and h[2] and instanceOf(redis.call('GET', ARGV[8] .. h[1])) == h[2] then
  return {0, h[1]}
end
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], now)
end
local fence = string.format('%d', redis.call('INCR', KEYS[2]))
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'inst', ARGV[2], 'token', ARGV[3],
  'fence', fence, 'pub', ARGV[4], 'grace', '0', 'since', now, 'ver', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[7], dirEntry(ARGV[1], ARGV[2], ARGV[3], fence, '0', now, ARGV[4]))
bumpDir(KEYS[5])
return {1, fence, now}
`)

// assertScript keeps a claim: extends it while the token is the owner's
// (and writes the publisher and grace when ARGV[12] is "1" and the write
// is newer than the stored one); re-creates it when its key is gone and
// the stream's fence counter is missing or still the claim's (nobody
// claimed the stream since).
//
// KEYS: claim, fence, dir, own lease, dir version. ARGV: token, fence,
// node ID, instance, publisher JSON, grace, since ms, ver, ttl ms, fence
// ttl ms, stream, write.
// Returns 1 (held), 2 (re-created), 0 (lost) or -1 (the lease is
// missing: try again later).
var assertScript = redis.NewScript(luaInstanceOf + luaDirEntry + `
local h = redis.call('HMGET', KEYS[1], 'token', 'ver')
if h[1] then
  if h[1] ~= ARGV[1] then return 0 end
  if ARGV[12] == '1' and tonumber(ARGV[8]) > (tonumber(h[2]) or 0) then
    redis.call('HSET', KEYS[1], 'pub', ARGV[5], 'grace', ARGV[6], 'ver', ARGV[8])
    redis.call('HSET', KEYS[3], ARGV[11], dirEntry(ARGV[3], ARGV[4], ARGV[1], ARGV[2], ARGV[6], ARGV[7], ARGV[5]))
    bumpDir(KEYS[5])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  return 1
end
local f = redis.call('GET', KEYS[2])
if f and f ~= ARGV[2] then return 0 end
if instanceOf(redis.call('GET', KEYS[4])) ~= ARGV[4] then return -1 end
redis.call('HSET', KEYS[1], 'node', ARGV[3], 'inst', ARGV[4], 'token', ARGV[1], 'fence', ARGV[2],
  'pub', ARGV[5], 'grace', ARGV[6], 'since', ARGV[7], 'ver', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[10])
redis.call('HSET', KEYS[3], ARGV[11], dirEntry(ARGV[3], ARGV[4], ARGV[1], ARGV[2], ARGV[6], ARGV[7], ARGV[5]))
bumpDir(KEYS[5])
return 2
`)

// releaseScript deletes a claim and its directory entry if its token is
// still the owner's.
//
// KEYS: claim, dir, dir version. ARGV: token, stream. Returns 1 or 0.
var releaseScript = redis.NewScript(luaDirEntry + `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[2])
  bumpDir(KEYS[3])
  return 1
end
return 0
`)

// pruneNodesScript removes from the node index the IDs whose lease is
// gone, checking each at the moment it removes it.
//
// KEYS: nodes, then one lease per ID. ARGV: the IDs.
var pruneNodesScript = redis.NewScript(`
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    redis.call('SREM', KEYS[1], id)
  end
end
return 0
`)

// pruneDirScript removes from the directory the streams whose claim is
// gone, checking each at the moment it removes it.
//
// KEYS: dir, dir version, then one claim per stream. ARGV: the streams.
var pruneDirScript = redis.NewScript(luaDirEntry + `
local n = 0
for i, name in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 2]) == 0 then
    n = n + redis.call('HDEL', KEYS[1], name)
  end
end
if n > 0 then bumpDir(KEYS[2]) end
return n
`)

var allScripts = []*redis.Script{heartbeatScript, leaveScript, viewScript, claimScript, assertScript, releaseScript, pruneNodesScript, pruneDirScript}

// loadScripts loads every script into Redis's cache, for pipelines, which
// cannot fall back from EVALSHA to EVAL.
func loadScripts(ctx context.Context, rdb redis.Scripter) error {
	for _, s := range allScripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// hasNoScript tells whether a pipeline's command failed for a script
// missing from Redis's cache (Redis restarted).
func hasNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}
