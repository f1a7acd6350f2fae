-- Insert one row (return=minimal, the default).
local key = os.getenv("SLUICE_BENCH_KEY")
request = function()
  return wrk.format("POST", "/rest/v1/items", { apikey = key, ["Content-Type"] = "application/json" },
    '{"category_id": ' .. math.random(1, 100) .. ', "name": "new item", "price": 9.5}')
end
