-- POST /api/v1/classify with one test text per request, rotating through a file of texts, for Debian's `wrk`
-- (a load generator in C that costs the machine little):
--
--   .venv/bin/python scripts/latency.py --run RUN --dump-texts /tmp/texts.txt     # the run's test texts
--   TEXTS=/tmp/texts.txt MODEL=odd wrk -t1 -c32 -d60s --latency -s scripts/wrk_classify.lua \
--       http://127.0.0.1:8000/api/v1/classify
--
-- or scripts/wrk_classify.sh RUN [CLIENTS] [DURATION] [MODEL] [PORT], which does both. TEXTS: one text per line
-- (default: a few built-in tweets); MODEL: the model to ask (default: the server's). Every request body is built
-- once, in init(); wrk counts the answers that are not 2xx ("Non-2xx or 3xx responses") and socket errors, and
-- done() prints the latency percentiles in ms.

local texts = {
  "What a lovely sunny afternoon with friends and coffee.",
  "You are worthless trash and everyone hates you.",
  "Honestly, the match was okay, sometimes a bit meh.",
  "Those people are vermin and do not belong in this country.",
  "I can't believe how kind the neighbours were during the holiday, thank you all so much!",
}

local function json_string(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

local bodies = {}
local next_body = 1
local threads = 0

function setup(thread)
  thread:set("thread_number", threads)  -- each thread starts at its own place in the rotation
  threads = threads + 1
end

function init(args)
  local path = os.getenv("TEXTS")
  if path and path ~= "" then
    local file = assert(io.open(path, "r"), "cannot read TEXTS=" .. path)
    texts = {}
    for line in file:lines() do
      if line:match("%S") then texts[#texts + 1] = line end
    end
    file:close()
    assert(#texts > 0, "no text in TEXTS=" .. path)
  end
  local model = os.getenv("MODEL")
  local model_field = (model and model ~= "") and (', "model": ' .. json_string(model)) or ""
  local headers = { ["Content-Type"] = "application/json" }
  for i, text in ipairs(texts) do
    bodies[i] = wrk.format("POST", nil, headers, '{"texts": [' .. json_string(text) .. ']' .. model_field .. '}')
  end
  next_body = (thread_number or 0) * 7919 % #bodies + 1
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return body
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "wrk_classify: %d requests in %.1f s = %.1f req/s; latency ms p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("wrk_classify: non-2xx %d, socket errors: connect %d, read %d, write %d, timeout %d\n",
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
