import peewee as pw


class CaseInsensitiveText(pw.TextField):
    field_type = "CITEXT"


def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Genre(pw.Model):
        name = CaseInsensitiveText(unique=True)
        books = pw.IntegerField(default=0)

        class Meta:
            table_name = "genre"

    @migrator.create_model
    class Book(pw.Model):
        title = pw.CharField(max_length=200)
        genre = pw.ForeignKeyField(Genre, on_delete="CASCADE")

        class Meta:
            table_name = "book"


def rollback(migrator, database, *, fake=False):
    migrator.remove_model("book")
    migrator.remove_model("genre")
