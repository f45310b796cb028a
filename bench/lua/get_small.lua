-- GET /api/2.0/mlflow-artifacts/artifacts/bench/small/fNNNNN.txt, cycling over the files
-- the Python-client phase uploaded. env: BENCH_LUA_DIR, BENCH_OUT, BENCH_FILES (count)
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local files = tonumber(os.getenv("BENCH_FILES") or "1000")
local n = 0
expect = nil

function request()
  n = n + 1
  local i = (tid * 7919 + n) % files
  return wrk.format("GET", string.format("/api/2.0/mlflow-artifacts/artifacts/bench/small/f%05d.txt", i))
end
