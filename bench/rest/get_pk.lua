-- GET one row by primary key, a random one of 100k.
local key = os.getenv("SLUICE_BENCH_KEY")
request = function()
  return wrk.format("GET", "/rest/v1/items?id=eq." .. math.random(1, 100000), { apikey = key })
end
