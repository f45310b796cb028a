-- One fixed request, repeated: $BENCH_METHOD (default POST) $BENCH_PATH with the body read
-- from $BENCH_BODY_FILE (if set) as $BENCH_CONTENT_TYPE. A correct answer contains
-- $BENCH_EXPECT (see common.lua).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

expect = os.getenv("BENCH_EXPECT")
local req = nil

function request()
  if req == nil then
    local body = nil
    local path = os.getenv("BENCH_BODY_FILE")
    if path and path ~= "" then
      local f = assert(io.open(path, "rb"))
      body = f:read("*a")
      f:close()
    end
    local headers = { ["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json" }
    req = wrk.format(os.getenv("BENCH_METHOD") or "POST", os.getenv("BENCH_PATH"), headers, body)
  end
  return req
end
