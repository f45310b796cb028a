-- PUT /api/2.0/mlflow-artifacts/artifacts/bench/wrk/<thread>/<n>.bin, a new file per request.
-- env: BENCH_LUA_DIR, BENCH_OUT, BENCH_SIZE (bytes per file)
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local body = string.rep("x", tonumber(os.getenv("BENCH_SIZE") or "4096"))
local headers = { ["Content-Type"] = "application/octet-stream" }
local n = 0
expect = nil

function request()
  n = n + 1
  -- 100 files per folder, as a client logging many small artifacts would spread them
  local path = string.format("/api/2.0/mlflow-artifacts/artifacts/bench/wrk/t%d/d%d/f%d.bin",
    tid, math.floor(n / 100), n)
  return wrk.format("PUT", path, headers, body)
end
