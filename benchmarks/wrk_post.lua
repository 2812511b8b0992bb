-- POSTs pre-signed webhook deliveries, each one once, for benchmarks/gateway.py.
-- Usage: wrk ... -s benchmarks/wrk_post.lua URL -- DELIVERIES_FILE THREADS
-- Each line of DELIVERIES_FILE is `webhook-id<TAB>webhook-timestamp<TAB>webhook-signature<TAB>body`.
-- Thread k sends lines k, k+THREADS, k+2*THREADS, ... (formatted once, at init), so no two
-- requests share a webhook-id until a thread runs out of lines; then it starts over and counts
-- the wrap (a wrapped request is a duplicate for the gateway; the bare app does not care).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   requests, index, wrapped = {}, 0, 0
   local number = 0
   for line in io.lines(path) do
      if number % nthreads == tid then
         local id, sent, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
         requests[#requests + 1] = wrk.format("POST", nil, {
            ["Content-Type"] = "application/json",
            ["webhook-id"] = id,
            ["webhook-timestamp"] = sent,
            ["webhook-signature"] = signature,
         }, body)
      end
      number = number + 1
   end
   count = #requests
end

function request()
   index = index + 1
   if index > #requests then
      index = 1
      wrapped = wrapped + 1
   end
   return requests[index]
end

function done(summary, latency, requests)
   local sent, wraps = 0, 0
   for _, thread in ipairs(threads) do
      sent = sent + (thread:get("wrapped") * thread:get("count")) + thread:get("index")
      wraps = wraps + thread:get("wrapped")
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
         .. "connect=%d read=%d write=%d status=%d timeout=%d sent=%d wraps=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout, sent, wraps))
end
