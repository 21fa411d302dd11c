-- wrk script for the page cache's workloads (bench/page_cache.py):
--   wrk ... -s page_cache.lua URL -- IDS_FILE TOKEN REPEAT_SHARE HOT MESSAGES
-- Each request reads 50 messages. With probability REPEAT_SHARE it is the latest 50 of one of
-- the first HOT conversations (a page read again and again, unchanged); otherwise a page few
-- read before: 50 messages of a random conversation below a random seq (before=51..MESSAGES+1),
-- which costs the database what the latest 50 costs. done() prints "BENCH_JSON {...}".

local ids = {}
local headers, repeat_share, hot, messages

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  headers = { ["Authorization"] = "Bearer " .. args[2] }
  repeat_share = tonumber(args[3])
  hot = math.min(tonumber(args[4]), #ids)
  messages = tonumber(args[5])
  math.randomseed(os.time() + tonumber(tostring(ids):match("0x(%x+)") or "0", 16))
end

function request()
  if math.random() < repeat_share then
    local id = ids[math.random(hot)]
    return wrk.format("GET", "/v1/conversations/" .. id .. "/messages?limit=50", headers)
  end
  local id = ids[math.random(#ids)]
  local before = math.random(51, messages + 1)
  return wrk.format(
    "GET", "/v1/conversations/" .. id .. "/messages?limit=50&before=" .. before, headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
