-- Shared wrk helpers: response checking and a JSON result file.
--
-- Every workload script sets `expect` (a plain substring that a correct
-- response body must contain, or nil) and defines request(). This file
-- supplies response() which counts 2xx / non-2xx / 2xx-with-wrong-body,
-- and done() which writes one JSON object to $BENCH_OUT.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

ok2xx = 0
non2xx = 0
badbody = 0
first_error = nil

function response(status, headers, body)
  if status >= 200 and status < 300 then
    if expect ~= nil and (body == nil or not string.find(body, expect, 1, true)) then
      badbody = badbody + 1
      if first_error == nil then
        first_error = "HTTP " .. status .. " unexpected body: " .. string.sub(body or "", 1, 200)
      end
    else
      ok2xx = ok2xx + 1
    end
  else
    non2xx = non2xx + 1
    if first_error == nil then
      first_error = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 200)
    end
  end
end

local function jstr(s)
  s = tostring(s or "")
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local ok, bad, badb, ferr = 0, 0, 0, nil
  for _, t in ipairs(threads) do
    ok = ok + (t:get("ok2xx") or 0)
    bad = bad + (t:get("non2xx") or 0)
    badb = badb + (t:get("badbody") or 0)
    ferr = ferr or t:get("first_error")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  local out = string.format(
    '{"requests": %d, "duration_s": %.3f, "rps": %.2f, "ok": %d, "ok_rps": %.2f, ' ..
    '"non2xx": %d, "bad_body": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"lat_p50_ms": %.3f, "lat_p99_ms": %.3f, "lat_max_ms": %.3f, "first_error": %s}\n',
    summary.requests, secs, summary.requests / secs, ok, ok / secs,
    bad, badb, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    ferr and jstr(ferr) or "null")
  local path = os.getenv("BENCH_OUT")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(out)
    f:close()
  end
  io.write(out)
end
