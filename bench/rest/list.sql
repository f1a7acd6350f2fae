\set c random(1, 100)
SELECT coalesce(json_agg(r), '[]')::text FROM (SELECT * FROM items WHERE category_id = :c ORDER BY id DESC LIMIT 20) r;
