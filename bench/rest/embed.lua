-- One row with its category embedded (many-to-one).
local key = os.getenv("SLUICE_BENCH_KEY")
request = function()
  return wrk.format("GET", "/rest/v1/items?select=id,name,categories(name)&id=eq." .. math.random(1, 100000), { apikey = key })
end
