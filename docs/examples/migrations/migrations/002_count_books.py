def migrate(migrator, database, *, fake=False):
    migrator.sql(
        """
        CREATE FUNCTION count_books() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE genre SET books = books + 1 WHERE id = NEW.genre_id;
            RETURN NEW;
        END $$
        """
    )
    migrator.sql(
        "CREATE TRIGGER book_counted AFTER INSERT ON book"
        " FOR EACH ROW EXECUTE FUNCTION count_books()"
    )


def rollback(migrator, database, *, fake=False):
    migrator.sql("DROP TRIGGER book_counted ON book")
    migrator.sql("DROP FUNCTION count_books()")
