"""written_tables and called_names: which tables one statement writes to, and what it may call, as the write
tracker reads them (PostgreSQL's, SQLite's and MySQL's forms)."""

from __future__ import annotations

import pytest

from peewee_async_testing.targets import called_names, written_tables

WRITES = {
    'INSERT INTO "book" (title) VALUES (1)': ["book"],
    "INSERT OR REPLACE INTO book VALUES (1)": ["book"],
    'INSERT INTO "shop"."book" VALUES (1)': ["book"],
    'INSERT INTO "odd""name" VALUES (1)': ['odd"name'],
    "INSERT INTO `book` (`title`) VALUES ('x')": ["book"],
    "INSERT INTO `test_shop`.`book` VALUES (1)": ["book"],
    "INSERT INTO `odd``name` VALUES (1)": ["odd`name"],
    "INSERT IGNORE book VALUES (1)": ["book"],
    "INSERT LOW_PRIORITY IGNORE INTO book VALUES (1)": ["book"],
    "INSERT INTO review (id) VALUES (1) ON DUPLICATE KEY UPDATE stars = 2": ["review"],
    "INSERT INTO book (title) SELECT name FROM author": ["book"],
    "REPLACE INTO `review` VALUES (1)": ["review"],
    "REPLACE DELAYED review VALUES (1)": ["review"],
    "LOAD DATA LOCAL INFILE '/tmp/x.csv' REPLACE INTO TABLE `book` FIELDS TERMINATED BY ','": ["book"],
    "LOAD XML INFILE 'x.xml' INTO TABLE shop.book": ["book"],
    "UPDATE book SET title = 'x'": ["book"],
    "UPDATE ONLY book SET title = 'x'": ["book"],
    "UPDATE OR IGNORE book SET title = 'x'": ["book"],
    "UPDATE LOW_PRIORITY IGNORE `book` AS b SET b.title = 'x'": ["book"],
    "UPDATE book, author SET book.title = author.name": ["book", "author"],
    "UPDATE `book` b JOIN author a ON a.id = b.author_id AND a.name IN ('set', 'x') SET b.title = 'x'": [
        "book",
        "author",
    ],
    "UPDATE book LEFT OUTER JOIN review USING (id) STRAIGHT_JOIN author SET stars = 1": ["book", "review", "author"],
    "UPDATE book SET title = 'x' FROM author WHERE author.id = book.author_id": ["book"],
    "DELETE FROM book WHERE id = 1": ["book"],
    "DELETE FROM ONLY book": ["book"],
    "DELETE LOW_PRIORITY QUICK IGNORE FROM `shop`.`book` WHERE id = 1": ["book"],
    "DELETE FROM book USING author WHERE author.id = book.author_id": ["book"],
    "DELETE FROM review, book USING review JOIN book ON book.id = review.book_id": ["review", "book"],
    "DELETE r FROM review AS r JOIN book AS b ON b.id = r.book_id WHERE b.id = 1": ["r", "review", "book"],
    "DELETE review, `book` FROM review INNER JOIN book ON book.id = review.book_id": [
        "review",
        "book",
        "review",
        "book",
    ],
}


@pytest.mark.parametrize("statement", WRITES)
def test_the_tables_a_write_names_are_read(statement: str) -> None:
    assert written_tables(statement) == WRITES[statement]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1",
        "WITH made AS (SELECT 1) INSERT INTO book SELECT * FROM made",
        "UPDATE (SELECT id FROM book) AS b SET b.id = 1",
        "DELETE b FROM (SELECT id FROM book) AS b",
        "CALL add_book(1)",
        "TRUNCATE review",
    ],
)
def test_what_is_not_a_write_it_can_read_is_none(statement: str) -> None:
    """None: the tracker then counts every table as written (a derived table's tables cannot be told)."""
    assert written_tables(statement) is None


def test_the_names_a_statement_calls_leave_out_keywords_built_ins_and_its_tables() -> None:
    statement = "INSERT INTO `book` (`title`) VALUES (CONCAT(add_book(1), COUNT(x), `Stamp` (2)))"
    assert called_names(statement, ["book"]) == {"add_book", "stamp"}
    assert called_names("SELECT COUNT(*) FROM (SELECT 1) AS t WHERE id IN (1, 2)") == set()
