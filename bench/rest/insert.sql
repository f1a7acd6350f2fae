\set c random(1, 100)
INSERT INTO items (category_id, name, price) VALUES (:c, 'new item', 9.5);
