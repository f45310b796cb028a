-- POST /api/2.0/mlflow/runs/log-batch with BENCH_BATCH metrics (keys m0..m{N-1})
-- all at one step that is unique per request, like log_metrics() at each step.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local run_id = os.getenv("BENCH_RUN_ID")
local batch = tonumber(os.getenv("BENCH_BATCH") or "1000")
local path = "/api/2.0/mlflow/runs/log-batch"
local headers = { ["Content-Type"] = "application/json" }
local n = 0
local base_ts = 1700000000000
local parts = nil
local slots = {}
expect = nil

function init(args)
  -- parts: prefix, then per metric: '{"key":"mI","value":V,"timestamp":', TS, ',"step":', STEP, '}'
  parts = { '{"run_id":"' .. run_id .. '","metrics":[' }
  for i = 0, batch - 1 do
    local sep = (i == 0) and "" or ","
    table.insert(parts, sep .. '{"key":"m' .. i .. '","value":' .. (i % 97) / 97 .. ',"timestamp":')
    table.insert(parts, "0")
    table.insert(slots, #parts)
    table.insert(parts, ',"step":')
    table.insert(parts, "0")
    table.insert(slots, #parts)
    table.insert(parts, "}")
  end
  table.insert(parts, "]}")
end

function request()
  n = n + 1
  local ts = tostring(base_ts + n)
  local step = tostring(tid * 100000000 + n)
  for i = 1, #slots, 2 do
    parts[slots[i]] = ts
    parts[slots[i + 1]] = step
  end
  return wrk.format("POST", path, headers, table.concat(parts))
end
