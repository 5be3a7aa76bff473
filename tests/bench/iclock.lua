-- wrk script of tests/bench/run.sh: the requests of many ZKTeco terminals, and a count of the
-- replies that are not what admsd must answer. The same script drives admsd and nginx.
--
--   wrk ... http://127.0.0.1:PORT -- MODE DEVICES THREADS PREFIX ROUND LINES EXPECT
--
-- MODE poll:   GET /iclock/getrequest?SN=<PREFIX><nnnnnn>, the serial numbers in rotation.
-- MODE attlog: POST /iclock/cdata?SN=…&table=ATTLOG&Stamp=… with LINES punches, each
--              `PIN\tYYYY-MM-DD HH:MM:SS\t0\t1\t0\t0\t0`. The PIN is made of ROUND, the thread
--              and the thread's request counter, so every punch of a run is new to the database
--              (unique key: SN, PIN, time, status, verify), across threads, requests and rounds.
-- DEVICES serial numbers <PREFIX>000001…; thread t of THREADS takes those ≡ t (mod THREADS), so
-- the threads never share one. EXPECT is the reply body that counts as a success ("OK",
-- "OK:128"); anything else (status or body) counts as bad and the first few are printed.
-- done() prints one line `WRK_RESULT key=value …` for run.sh.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   mode = args[1] or "poll"
   devices = tonumber(args[2]) or 1000
   nthreads = tonumber(args[3]) or 1
   prefix = args[4] or "BENCH"
   round = tonumber(args[5]) or 1
   lines = tonumber(args[6]) or 1
   expect = args[7] or "OK"
   counter = 0
   good = 0
   bad = 0
   shown = 0
   -- The same times in every request (the PIN makes each punch distinct): a body costs one
   -- table.concat, so wrk spends little of the two cores it shares with the server.
   suffixes = {}
   for j = 0, lines - 1 do
      suffixes[j + 1] = string.format("\t2026-01-%02d %02d:%02d:%02d\t0\t1\t0\t0\t0\n",
         5 + round % 20, 8 + math.floor(j / 3600), math.floor(j / 60) % 60, j % 60)
   end
   parts = {}
end

-- The next serial number of this thread.
local function next_serial_number()
   local index = (tid + counter * nthreads) % devices
   return string.format("%s%06d", prefix, index + 1)
end

function request()
   local sn = next_serial_number()
   counter = counter + 1
   if mode == "poll" then
      return wrk.format("GET", "/iclock/getrequest?SN=" .. sn)
   end
   -- PIN: round (1–3 digits), thread (2 digits), counter (7 digits): at most 12 digits, unique.
   local pin = string.format("%d%02d%07d", round, tid, counter)
   for j = 1, lines do
      parts[2 * j - 1] = pin
      parts[2 * j] = suffixes[j]
   end
   local stamp = round * 1000000000 + counter * nthreads + tid
   return wrk.format("POST", "/iclock/cdata?SN=" .. sn .. "&table=ATTLOG&Stamp=" .. stamp,
      nil, table.concat(parts))
end

function response(status, headers, body)
   if status == 200 and body == expect then
      good = good + 1
   else
      bad = bad + 1
      if shown < 3 then
         shown = shown + 1
         io.stderr:write(string.format("wrk: unexpected reply %d %q (expected 200 %q)\n",
            status, string.sub(body or "", 1, 120), expect))
      end
   end
end

function done(summary, latency, requests)
   local good_total, bad_total = 0, 0
   for _, thread in ipairs(threads) do
      good_total = good_total + thread:get("good")
      bad_total = bad_total + thread:get("bad")
   end
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d good=%d bad=%d connect_errors=%d "
         .. "read_errors=%d write_errors=%d status_errors=%d timeouts=%d "
         .. "p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, good_total, bad_total, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
