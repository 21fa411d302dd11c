-- wrk script for the search benchmark: wrk ... -s search.lua URL -- PATHS_FILE TOKEN
-- Each request is a random line of PATHS_FILE (a GET path with its query string, already
-- URL-encoded). done() prints one line "BENCH_JSON {...}" for the driver to parse.

local paths = {}
local headers

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  headers = { ["Authorization"] = "Bearer " .. args[2] }
  math.randomseed(os.time() + tonumber(tostring(paths):match("0x(%x+)") or "0", 16))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
