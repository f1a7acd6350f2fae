\set id random(1, 100000)
SELECT coalesce(json_agg(r), '[]')::text FROM (SELECT * FROM items WHERE id = :id) r;
