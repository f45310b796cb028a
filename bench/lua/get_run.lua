-- GET /api/2.0/mlflow/runs/get?run_id=..&run_uuid=.. (as the Python client sends it)
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local run_id = os.getenv("BENCH_RUN_ID")
-- a correct answer carries the last metric key logged in setup
expect = os.getenv("BENCH_EXPECT") or run_id
local req = nil

function request()
  if req == nil then
    req = wrk.format("GET", "/api/2.0/mlflow/runs/get?run_uuid=" .. run_id .. "&run_id=" .. run_id)
  end
  return req
end
