-- PocketBase (bench/rest-peers.sh): GET one record by id, a random one of 100k, public view rule.
request = function()
  return wrk.format("GET", string.format("/api/collections/items/records/%015d", math.random(1, 100000)))
end
