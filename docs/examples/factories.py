import asyncio
import tempfile
from pathlib import Path

import peewee
import peewee_async

from peewee_async_testing import ModelFactory, TransactionTestCase


class User(peewee_async.AioModel):
    email = peewee.CharField(unique=True)
    is_admin = peewee.BooleanField(default=False)


class Post(peewee_async.AioModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(User, backref="posts")


class UserFactory(ModelFactory[User]):
    model = User

    @classmethod
    def defaults(cls, n: int) -> dict[str, object]:  # n: 1, 2, 3, ...
        return {"email": f"user{n}@example.test"}

    @classmethod
    def state_admin(cls) -> dict[str, object]:
        return {"is_admin": True}


class PostFactory(ModelFactory[Post]):
    model = Post

    @classmethod
    def defaults(cls, n: int) -> dict[str, object]:
        return {"title": lambda n: f"Post {n}", "author": UserFactory}


async def main(database: peewee_async.SqliteDatabase) -> None:
    database.bind([User, Post])
    await database.aio_create_tables([User, Post])

    draft = PostFactory.build()  # unsaved, no query: its author is built unsaved too
    assert draft.id is None and draft.author.id is None

    async with TransactionTestCase(database):
        admin = await UserFactory.state("admin").create()
        assert admin.is_admin and admin.email == "user2@example.test"
        post = await PostFactory.create()  # creates its author first
        assert post.author.id is not None
        mine = await PostFactory.create(author=admin)  # explicit: not re-created
        assert mine.author_id == admin.id
        batch = await UserFactory.create_batch(3)  # one INSERT ... RETURNING
        assert len({user.id for user in batch}) == 3

    assert await User.select().aio_count() == 0  # undone with the block

    await database.aio_drop_tables([User, Post])
    await database.aio_close()


with tempfile.TemporaryDirectory() as folder:
    asyncio.run(main(peewee_async.SqliteDatabase(str(Path(folder) / "app.db"))))
