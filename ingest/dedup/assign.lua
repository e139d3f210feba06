-- Story assignment for one batch, atomically: see ingest/dedup/index.py.
local prefix, gen, ngens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expire_at, threshold, window = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local maxcand, maxratio, nitems = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local pos, out = 10, {}
local xkeys, bkeys = {}, {}  -- key prefixes of the live buckets, oldest first
for g = gen - ngens + 1, gen do
  xkeys[#xkeys + 1] = prefix .. 'x:' .. g .. ':'
  bkeys[#bkeys + 1] = prefix .. 'b:' .. g .. ':'
end

local function record(seq)
  local rec = redis.call('GET', prefix .. 'd:' .. seq)
  if not rec then return nil end
  local a = string.find(rec, '\n', 1, true)
  local b = string.find(rec, '\n', a + 1, true)
  local c = string.find(rec, '\n', b + 1, true)
  local d = string.find(rec, '\n', c + 1, true)
  local aid = string.sub(rec, a + 1, b - 1)
  local story = string.sub(rec, b + 1, c - 1)
  if story == '' then story = aid end
  return {ts = tonumber(string.sub(rec, 1, a - 1)), aid = aid, story = story,
          size = tonumber(string.sub(rec, c + 1, d - 1)), sig = string.sub(rec, d + 1)}
end

local function similarity(x, size, rec)
  if #rec.sig ~= #x or #x == 0 then return 0 end
  local y, same = {string.byte(rec.sig, 1, #x)}, 0
  for i = 1, #x do if x[i] == y[i] then same = same + 1 end end
  local j = (same / #x - 1 / 256) / (1 - 1 / 256)
  if j < 0 then return 0 end
  local small, large = math.min(size, rec.size), math.max(size, rec.size)
  if small <= 0 or large > maxratio * small then return j end
  return math.min(1, j / (1 + j) * (small + large) / small)
end

local function put(keys, bucket, field, seq)
  local key = keys[ngens] .. bucket
  redis.call('HSETNX', key, field, seq)
  redis.call('EXPIREAT', key, expire_at)
end

for _ = 1, nitems do
  local aid, ts, nex = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  local ex, found = {}, nil
  pos = pos + 3
  for i = 1, nex do
    local bucket, field = ARGV[pos], ARGV[pos + 1]
    pos = pos + 2
    local seq = nil
    for g = 1, ngens do
      seq = redis.call('HGET', xkeys[g] .. bucket, field)
      if seq then break end
    end
    if seq and not found then found = record(seq) ; if found then found.seq = seq end end
    if not seq then ex[#ex + 1] = {bucket, field} end
  end
  local sig, size, nb = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  pos = pos + 3
  local bands = {}
  for i = 1, nb do bands[i] = {ARGV[pos], ARGV[pos + 1]} ; pos = pos + 2 end
  if found then
    for _, e in ipairs(ex) do put(xkeys, e[1], e[2], found.seq) end
    out[#out + 1] = {'exact', found.story, found.aid, '1'}
  else
    local best, bestsim = nil, -1
    if nb > 0 then
      local counts, order = {}, {}
      for _, band in ipairs(bands) do
        for g = 1, ngens do
          local seq = redis.call('HGET', bkeys[g] .. band[1], band[2])
          if seq then
            if not counts[seq] then order[#order + 1] = seq ; counts[seq] = 0 end
            counts[seq] = counts[seq] + 1
          end
        end
      end
      table.sort(order, function(p, q) return counts[p] > counts[q] end)
      local x = {string.byte(sig, 1, #sig)}
      for i = 1, math.min(#order, maxcand) do
        local rec = record(order[i])
        if rec and (window <= 0 or math.abs(rec.ts - ts) <= window) then
          local sim = similarity(x, size, rec)
          if sim >= threshold and sim > bestsim then best, bestsim = rec, sim end
        end
      end
    end
    local seq = redis.call('INCR', prefix .. 'seq')
    local story = ''
    if best then story = best.story end
    if story == aid then story = '' end
    local rec = ts .. '\n' .. aid .. '\n' .. story .. '\n' .. size .. '\n' .. sig
    redis.call('SET', prefix .. 'd:' .. seq, rec, 'EXAT', expire_at)
    for _, e in ipairs(ex) do put(xkeys, e[1], e[2], seq) end
    for _, band in ipairs(bands) do put(bkeys, band[1], band[2], seq) end
    if best then
      out[#out + 1] = {'near', best.story, best.aid, string.format('%.4f', bestsim)}
    else
      out[#out + 1] = {'new', aid, '', ''}
    end
  end
end
return out
