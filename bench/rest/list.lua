-- A filtered, ordered list of 20.
local key = os.getenv("SLUICE_BENCH_KEY")
request = function()
  return wrk.format("GET", "/rest/v1/items?category_id=eq." .. math.random(1, 100) .. "&order=id.desc&limit=20", { apikey = key })
end
