\set id random(1, 100000)
SELECT coalesce(json_agg(r), '[]')::text FROM (SELECT i.id, i.name, (SELECT row_to_json(c) FROM (SELECT name FROM categories WHERE categories.id = i.category_id) c) AS categories FROM items i WHERE i.id = :id) r;
