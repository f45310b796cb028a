-- POST /v1/traces: an OTLP protobuf export whose trace ids are new on every request.
-- $BENCH_BODY_FILE is a template made by traces.py: an ExportTraceServiceRequest whose
-- trace ids are 16-byte placeholders "\127TRACEPLACEHO" .. 3 digits; each is replaced by
-- 16 bytes made of this thread's id, a request counter and the placeholder's number.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

expect = nil
local template = nil
local headers = {
  ["Content-Type"] = "application/x-protobuf",
  ["x-mlflow-experiment-id"] = os.getenv("BENCH_EXPERIMENT_ID"),
}
local counter = 0
-- a different prefix for the warm-up and the measured phase, so their traces never collide
local phase = tonumber(os.getenv("BENCH_PHASE") or "1")

local function be(n, width)
  local out = {}
  for i = width, 1, -1 do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

function request()
  if template == nil then
    local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
    template = f:read("*a")
    f:close()
  end
  counter = counter + 1
  local prefix = string.char(phase, tid or 0) .. be(counter, 6)
  local body = string.gsub(template, "\127TRACEPLACEHO(%d%d%d)", function(k)
    return prefix .. be(tonumber(k), 4) .. "\0\0\0\1"
  end)
  return wrk.format("POST", "/v1/traces", headers, body)
end
