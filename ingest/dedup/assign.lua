-- Story assignment for one batch, atomically: see ingest/dedup/index.py.
-- The rule is fingerprint.story_similarity's: MinHash estimate or, higher, the sampled-shingle
-- containment of the shorter body; 0 when the two state different numbers (or names).
local prefix, gen, ngens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expire_at, threshold, window = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local maxcand, maxratio, nitems = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local sampmin, nummin, nummatch = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local namemin, namematch, factsmin = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local pos, out = 16, {}
local xkeys, bkeys, ckeys = {}, {}, {}  -- key prefixes of the live buckets, oldest first
for g = gen - ngens + 1, gen do
  xkeys[#xkeys + 1] = prefix .. 'x:' .. g .. ':'
  bkeys[#bkeys + 1] = prefix .. 'b:' .. g .. ':'
  ckeys[#ckeys + 1] = prefix .. 'c:' .. g .. ':'
end

local function ints(s, at, n, width)
  local vals = {}
  for i = 0, n - 1 do
    local v = 0
    for k = 0, width - 1 do v = v * 256 + string.byte(s, at + i * width + k) end
    vals[#vals + 1] = v
  end
  return vals
end

-- meta: "sampcap numcap namecap nsamp nnum nname"; blob: samples (4 bytes), numbers, names (2 bytes)
local function sketches(meta, blob)
  local m = {}
  for w in string.gmatch(meta, '%S+') do m[#m + 1] = tonumber(w) end
  if #m < 6 then return {samp = {v = {}}, nums = {v = {}}, names = {v = {}}} end
  local ns, nn, nm = m[4], m[5], m[6]
  return {
    samp = {v = ints(blob, 1, ns, 4), capped = m[1] == 1},
    nums = {v = ints(blob, 1 + 4 * ns, nn, 2), capped = m[2] == 1},
    names = {v = ints(blob, 1 + 4 * ns + 2 * nn, nm, 2), capped = m[3] == 1},
  }
end

local function record(seq)
  local rec = redis.call('GET', prefix .. 'd:' .. seq)
  if not rec then return nil end
  local v2 = string.sub(rec, 1, 3) == 'v2\n'  -- records written before the sketches have 4 fields
  local at, f = 1, {}
  if v2 then at = 4 end
  for i = 1, (v2 and 6 or 4) do
    local nl = string.find(rec, '\n', at, true)
    f[i] = string.sub(rec, at, nl - 1)
    at = nl + 1
  end
  local r = {ts = tonumber(f[1]), aid = f[2], story = f[3], size = tonumber(f[4])}
  if r.story == '' then r.story = r.aid end
  if v2 then
    local nsig = tonumber(f[5])
    r.sig = string.sub(rec, at, at + nsig - 1)
    r.sk = sketches(f[6], string.sub(rec, at + nsig))
  else
    r.sig = string.sub(rec, at)
    r.sk = sketches('', '')
  end
  return r
end

local function cut(a, b)
  local t = 2 ^ 40
  if a.capped and #a.v > 0 then t = math.min(t, a.v[#a.v]) end
  if b.capped and #b.v > 0 then t = math.min(t, b.v[#b.v]) end
  return t
end

local function contained(small, large)
  local t, set, found, compared = cut(small, large), {}, 0, 0
  for _, v in ipairs(large.v) do set[v] = true end
  for _, v in ipairs(small.v) do
    if v <= t then
      compared = compared + 1
      if set[v] then found = found + 1 end
    end
  end
  return found, compared
end

local function overlap(a, b)
  local t, set, na, nb, shared = cut(a, b), {}, 0, 0, 0
  for _, v in ipairs(a.v) do if v <= t then set[v] = true ; na = na + 1 end end
  for _, v in ipairs(b.v) do
    if v <= t then
      nb = nb + 1
      if set[v] then shared = shared + 1 end
    end
  end
  return shared, math.min(na, nb)
end

local function facts_agree(a, b)
  local nshared, ncompared = overlap(a.nums, b.nums)
  if ncompared >= nummin then return nshared > nummatch * ncompared end
  local mshared, mcompared = overlap(a.names, b.names)
  if mcompared >= namemin then return mshared > namematch * mcompared end
  if ncompared + mcompared >= factsmin then
    return nshared + mshared > namematch * (ncompared + mcompared)
  end
  return true
end

local function minhash_sim(x, size, rec)
  if #rec.sig ~= #x or #x == 0 then return 0 end
  local y, same = {string.byte(rec.sig, 1, #x)}, 0
  for i = 1, #x do if x[i] == y[i] then same = same + 1 end end
  local j = (same / #x - 1 / 256) / (1 - 1 / 256)
  if j < 0 then return 0 end
  local small, large = math.min(size, rec.size), math.max(size, rec.size)
  if small <= 0 or large > maxratio * small then return j end
  return math.min(1, j / (1 + j) * (small + large) / small)
end

local function similarity(x, size, sk, rec)
  if #x == 0 or #rec.sig ~= #x then return 0 end
  local sim = minhash_sim(x, size, rec)
  local small, large = sk, rec.sk
  if rec.size < size then small, large = rec.sk, sk end
  local found, compared = contained(small.samp, large.samp)
  if found >= sampmin then sim = math.max(sim, found / compared) end
  if sim >= threshold and not facts_agree(sk, rec.sk) then return 0 end
  return sim
end

local function put(keys, bucket, field, seq)
  local key = keys[ngens] .. bucket
  redis.call('HSETNX', key, field, seq)
  redis.call('EXPIREAT', key, expire_at)
end

-- Candidates sharing the most of `entries` (bucket, field) across the live buckets of `keys`.
local function candidates(keys, entries, into, seen)
  local counts, order = {}, {}
  for _, e in ipairs(entries) do
    for g = 1, ngens do
      local seq = redis.call('HGET', keys[g] .. e[1], e[2])
      if seq then
        if not counts[seq] then order[#order + 1] = seq ; counts[seq] = 0 end
        counts[seq] = counts[seq] + 1
      end
    end
  end
  table.sort(order, function(p, q) return counts[p] > counts[q] end)
  for i = 1, math.min(#order, maxcand) do
    if not seen[order[i]] then seen[order[i]] = true ; into[#into + 1] = order[i] end
  end
end

local function pairs_at(n)
  local list = {}
  for i = 1, n do list[i] = {ARGV[pos], ARGV[pos + 1]} ; pos = pos + 2 end
  return list
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
  local bands = pairs_at(nb)
  local meta, blob, ns = ARGV[pos], ARGV[pos + 1], tonumber(ARGV[pos + 2])
  pos = pos + 3
  local samples = pairs_at(ns)
  if found then
    for _, e in ipairs(ex) do put(xkeys, e[1], e[2], found.seq) end
    out[#out + 1] = {'exact', found.story, found.aid, '1'}
  else
    local best, bestsim = nil, -1
    if nb > 0 then
      local order, seen = {}, {}
      candidates(bkeys, bands, order, seen)
      candidates(ckeys, samples, order, seen)
      local x, sk = {string.byte(sig, 1, #sig)}, sketches(meta, blob)
      for _, cand in ipairs(order) do
        local rec = record(cand)
        if rec and (window <= 0 or math.abs(rec.ts - ts) <= window) then
          local sim = similarity(x, size, sk, rec)
          if sim >= threshold and sim > bestsim then best, bestsim = rec, sim end
        end
      end
    end
    local seq = redis.call('INCR', prefix .. 'seq')
    local story = ''
    if best then story = best.story end
    if story == aid then story = '' end
    local rec = 'v2\n' .. ts .. '\n' .. aid .. '\n' .. story .. '\n' .. size .. '\n' .. #sig .. '\n'
      .. meta .. '\n' .. sig .. blob
    redis.call('SET', prefix .. 'd:' .. seq, rec, 'EXAT', expire_at)
    for _, e in ipairs(ex) do put(xkeys, e[1], e[2], seq) end
    for _, band in ipairs(bands) do put(bkeys, band[1], band[2], seq) end
    for _, s in ipairs(samples) do put(ckeys, s[1], s[2], seq) end
    if best then
      out[#out + 1] = {'near', best.story, best.aid, string.format('%.4f', bestsim)}
    else
      out[#out + 1] = {'new', aid, '', ''}
    end
  end
end
return out
