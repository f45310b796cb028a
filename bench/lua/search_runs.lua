-- POST /api/2.0/mlflow/runs/search with a metric filter.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local exp_id = os.getenv("BENCH_EXPERIMENT_ID")
local filter = os.getenv("BENCH_FILTER") or "metrics.m > 0.5"
local max_results = tonumber(os.getenv("BENCH_MAX_RESULTS") or "100")
local headers = { ["Content-Type"] = "application/json" }
-- a page of results always has a next_page_token when more runs match
expect = os.getenv("BENCH_EXPECT") or '"runs"'
local req = nil

function request()
  if req == nil then
    local body = string.format(
      '{"experiment_ids":["%s"],"filter":"%s","run_view_type":"ACTIVE_ONLY","max_results":%d,"order_by":[]}',
      exp_id, filter, max_results)
    req = wrk.format("POST", "/api/2.0/mlflow/runs/search", headers, body)
  end
  return req
end
