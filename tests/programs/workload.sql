-- workload.sql: the sqlite3 workload of sqlite.sh, run on a fresh database
-- file with and without the preload; everything it prints must match.
-- Deterministic: no random(), no dates; pseudo-random values come from
-- arithmetic on the row number.
.bail on
.headers on
.mode list
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -4000;

CREATE TABLE customer (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	city TEXT NOT NULL,
	tier INTEGER NOT NULL
);
CREATE TABLE orders (
	id INTEGER PRIMARY KEY,
	customer_id INTEGER NOT NULL REFERENCES customer(id),
	amount INTEGER NOT NULL,
	note TEXT,
	meta TEXT
);

-- 2,000 customers, 100,000 orders, all through recursive CTEs.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO customer (id, name, city, tier)
SELECT i, 'customer-' || printf('%05d', i),
       CASE i % 7 WHEN 0 THEN 'Oslo' WHEN 1 THEN 'Lima' WHEN 2 THEN 'Pune'
                  WHEN 3 THEN 'Kyiv' WHEN 4 THEN 'Accra' WHEN 5 THEN 'Quito'
                  ELSE 'Hanoi' END,
       (i * 37) % 5
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO orders (id, customer_id, amount, note, meta)
SELECT i, (i * 7919) % 2000 + 1, (i * 104729) % 10007,
       CASE WHEN i % 13 = 0 THEN NULL
            ELSE substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor',
                        1 + i % 40, 5 + i % 60) END,
       json_object('seq', i, 'tags', json_array('t' || (i % 11), 't' || (i % 17)),
                   'blob', hex(zeroblob(i % 200)))
FROM n;

SELECT 'rows', (SELECT count(*) FROM customer), (SELECT count(*) FROM orders);

CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_amount ON orders(amount DESC, id);
CREATE INDEX customer_city ON customer(city, tier);
CREATE INDEX orders_tag0 ON orders(json_extract(meta, '$.tags[0]'));

-- Joins and GROUP BY.
SELECT c.city, count(*) AS n, sum(o.amount) AS total, min(o.amount) AS lo,
       max(o.amount) AS hi, round(avg(o.amount), 3) AS mean
FROM orders o JOIN customer c ON c.id = o.customer_id
GROUP BY c.city ORDER BY c.city;

SELECT c.tier, count(DISTINCT c.id) AS customers, count(o.id) AS orders
FROM customer c LEFT JOIN orders o ON o.customer_id = c.id AND o.amount > 9000
GROUP BY c.tier ORDER BY c.tier;

-- Window functions.
SELECT city, name, spent, rnk
FROM (SELECT c.city, c.name, sum(o.amount) AS spent,
             rank() OVER (PARTITION BY c.city ORDER BY sum(o.amount) DESC, c.id) AS rnk
      FROM customer c JOIN orders o ON o.customer_id = c.id
      GROUP BY c.id)
WHERE rnk <= 3 ORDER BY city, rnk;

SELECT id, amount,
       sum(amount) OVER (ORDER BY id ROWS BETWEEN 99 PRECEDING AND CURRENT ROW) AS moving,
       lag(amount, 1, -1) OVER (ORDER BY id) AS prev,
       ntile(4) OVER (ORDER BY amount, id) AS quartile
FROM orders WHERE id % 9973 = 0 ORDER BY id;

SELECT total(x) FROM (SELECT sum(amount) OVER (PARTITION BY customer_id ORDER BY id) AS x FROM orders);

-- JSON functions.
SELECT json_extract(meta, '$.tags[0]') AS tag, count(*) AS n, sum(json_extract(meta, '$.seq')) AS seqsum
FROM orders GROUP BY tag ORDER BY tag;

SELECT o.id, j.key, j.value
FROM orders o, json_each(o.meta, '$.tags') j WHERE o.id IN (1, 500, 99999) ORDER BY o.id, j.key;

SELECT json_group_array(id) FROM (SELECT id FROM orders WHERE amount = 4242 ORDER BY id);
SELECT json_group_object(city, n) FROM (SELECT city, count(*) AS n FROM customer GROUP BY city ORDER BY city);
SELECT sum(length(json_set(meta, '$.extra', json_array(id, amount)))) FROM orders WHERE id % 3 = 0;

-- Strings, GROUP_CONCAT and a correlated subquery.
SELECT substr(group_concat(upper(note), '|'), 1, 200) FROM (SELECT note FROM orders WHERE note IS NOT NULL ORDER BY id LIMIT 50);
SELECT count(*) FROM customer c
WHERE (SELECT max(amount) FROM orders o WHERE o.customer_id = c.id) > 10000;

-- UPDATE and DELETE in a transaction, a rollback, a savepoint.
BEGIN;
UPDATE orders SET amount = amount * 2, note = coalesce(note, 'none') || '!' WHERE id % 5 = 0;
DELETE FROM orders WHERE customer_id IN (SELECT id FROM customer WHERE tier = 4 AND city = 'Oslo');
SAVEPOINT s1;
DELETE FROM orders;
ROLLBACK TO s1;
RELEASE s1;
COMMIT;
BEGIN;
DELETE FROM customer;
ROLLBACK;

SELECT 'after', count(*), sum(amount), sum(length(note)), count(note) FROM orders;
SELECT count(*) FROM orders WHERE note LIKE '%!';

-- A temp table sorted without an index, a CTE with UNION and EXCEPT.
CREATE TEMP TABLE big AS SELECT id, amount, meta FROM orders ORDER BY amount DESC, meta;
SELECT count(*), min(id), max(id) FROM big;
WITH a AS (SELECT customer_id FROM orders WHERE amount < 100),
     b AS (SELECT customer_id FROM orders WHERE amount > 19000)
SELECT count(*) FROM (SELECT customer_id FROM a UNION SELECT customer_id FROM b
                      EXCEPT SELECT id FROM customer WHERE tier = 0);

-- Shrink and rebuild the file.
DELETE FROM orders WHERE id % 2 = 0;
PRAGMA wal_checkpoint(TRUNCATE);
VACUUM;
PRAGMA integrity_check;
SELECT 'final', count(*), sum(amount) FROM orders;
SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name;
