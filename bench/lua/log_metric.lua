-- POST /api/2.0/mlflow/runs/log-metric, one metric per request, step varies.
-- env: BENCH_LUA_DIR, BENCH_RUN_ID, BENCH_OUT
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local run_id = os.getenv("BENCH_RUN_ID")
local path = "/api/2.0/mlflow/runs/log-metric"
local headers = { ["Content-Type"] = "application/json" }
local n = 0
local base_ts = 1700000000000
expect = nil  -- reply is "{}"

function request()
  n = n + 1
  local step = tid * 100000000 + n
  local body = string.format(
    '{"run_id":"%s","run_uuid":"%s","key":"loss","value":%d.25,"timestamp":%d,"step":%d}',
    run_id, run_id, n % 1000, base_ts + n, step)
  return wrk.format("POST", path, headers, body)
end
