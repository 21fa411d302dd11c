-- wrk script for every HTTP workload:
--   wrk ... -s chatkeep.lua URL -- MODE IDS_FILE TOKEN USERS [MAX_TOKENS]
--   read   GET the latest 50 messages of a random conversation
--   window GET the context window of MAX_TOKENS (default 5000) of a random conversation
--   list   GET a random user's 20 most recently updated conversations
--   append POST a 2-message turn to a random conversation
--   batch  POST 100 messages to a random conversation
-- done() prints one line "BENCH_JSON {...}" for the driver to parse.

local ids = {}
local mode, headers, users, max_tokens
local turn, batch

local function message(role, i)
  return string.format(
    '{"role":"%s","content":"%s","metadata":{"citations":[{"url":"https://example.com/%d"}]}}',
    role, string.rep("benchmark text ", 26), i)
end

local function body(count)
  local parts = {}
  for i = 1, count do
    parts[i] = message(i % 2 == 1 and "user" or "assistant", i)
  end
  return '{"messages":[' .. table.concat(parts, ",") .. "]}"
end

function init(args)
  mode = args[1]
  for line in io.lines(args[2]) do
    ids[#ids + 1] = line
  end
  headers = { ["Authorization"] = "Bearer " .. args[3], ["Content-Type"] = "application/json" }
  users = tonumber(args[4])
  max_tokens = args[5] or "5000"
  turn, batch = body(2), body(100)
  math.randomseed(os.time() + tonumber(tostring(ids):match("0x(%x+)") or "0", 16))
end

function request()
  local id = ids[math.random(#ids)]
  if mode == "read" then
    return wrk.format("GET", "/v1/conversations/" .. id .. "/messages?limit=50", headers)
  elseif mode == "window" then
    return wrk.format(
      "GET", "/v1/conversations/" .. id .. "/messages?max_tokens=" .. max_tokens, headers)
  elseif mode == "list" then
    local user = "user-" .. math.random(0, users - 1)
    return wrk.format("GET", "/v1/conversations?limit=20&user_id=" .. user, headers)
  elseif mode == "append" then
    return wrk.format("POST", "/v1/conversations/" .. id .. "/messages", headers, turn)
  else
    return wrk.format("POST", "/v1/conversations/" .. id .. "/messages", headers, batch)
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
