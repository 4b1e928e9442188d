-- wrk script: single-comment Perspective analyze requests for TOXICITY, cycling through a few comments.
--   wrk -t4 -c32 -d60s --latency -s scripts/wrk_analyze.lua http://127.0.0.1:8000
-- With --api-key-file on the server: KEY=... wrk ... (the key is sent as ?key=, as Perspective's clients do).
-- Compare with the same load on /api/v1/classify: scripts/wrk_classify.lua (same comments, one text a request).
local comments = {
  "What a lovely sunny afternoon with friends and coffee.",
  "You are worthless trash and everyone hates you.",
  "Honestly, the match was okay, sometimes a bit meh.",
  "Those people are vermin and do not belong in this country.",
  "I can't believe how kind the neighbours were during the holiday, thank you all so much!",
}
local attribute = os.getenv("ATTRIBUTE") or "TOXICITY"
local key = os.getenv("KEY")
local bodies = {}
for i, text in ipairs(comments) do
  bodies[i] = string.format('{"comment":{"text":"%s"},"requestedAttributes":{"%s":{}}}', text, attribute)
end
local path = "/v1alpha1/comments:analyze" .. (key and ("?key=" .. key) or "")
local n = 0

request = function()
  n = n + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[(n % #bodies) + 1])
end

done = function(summary, latency, requests)
  io.write(string.format("requests/s %.1f  p50 %.1f ms  p99 %.1f ms  non-2xx %d  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
