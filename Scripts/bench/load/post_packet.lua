-- wrk script for Scripts/bench/load/load.sh: POSTs one latent packet to /v1/infer and counts statuses.
--   [LADON_BACKOFF=1] wrk -s post_packet.lua URL/v1/infer -- PACKET_FILE
-- With LADON_BACKOFF=1, each 503 delays one later request of the same wrk thread by its Retry-After (a client
-- that honours Retry-After, roughly); without it wrk re-sends at once (the worst case).
-- done() prints one line `LADON_RESULT key=value ...` that load.sh parses (latencies in ms).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local request_bytes
local backoff = os.getenv("LADON_BACKOFF") == "1"
local pending_delays = {}

function init(args)
   local path = args[1] or os.getenv("LADON_PACKET")
   assert(path, "post_packet.lua: give the packet file after --")
   local f = assert(io.open(path, "rb"))
   local body = f:read("*a")
   f:close()
   statuses = {}   -- global, so done() can read it with thread:get
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/vnd.ladon.packet"
   request_bytes = wrk.format()
end

if backoff then   -- wrk only schedules delays when the script defines delay()
   function delay()
      if #pending_delays > 0 then return table.remove(pending_delays, 1) end
      return 0
   end
end

function request()
   return request_bytes
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if backoff and status == 503 then
      local seconds = tonumber(headers["Retry-After"] or headers["retry-after"] or "1") or 1
      pending_delays[#pending_delays + 1] = seconds * 1000
   end
end

function done(summary, latency, requests)
   local ok, busy, other = 0, 0, 0
   local others = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for status, n in pairs(counts) do
         if status == 200 then ok = ok + n
         elseif status == 503 then busy = busy + n
         else
            other = other + n
            others[#others + 1] = status .. ":" .. n
         end
      end
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local function pct(p) return latency:percentile(p) / 1000 end
   io.write(string.format(
      "LADON_RESULT requests=%d seconds=%.3f rps=%.3f ok_rps=%.3f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f " ..
      "s200=%d s503=%d other=%d other_codes=%s err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
      summary.requests, seconds, summary.requests / seconds, ok / seconds, pct(50), pct(90), pct(99),
      latency.max / 1000, ok, busy, other, (#others > 0 and table.concat(others, ",") or "-"),
      e.connect, e.read, e.write, e.timeout))
end
