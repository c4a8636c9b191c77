import asyncio

from signups import Mail, User, running


async def test_background_tasks_are_done_when_the_response_arrives(client):
    await client.post("/signups", params={"email": "ada@example.com"})
    # ASGITransport returns once the app is done, its BackgroundTasks included.
    assert await Mail.select(Mail.to, Mail.subject).tuples().aio_execute() == [
        ("ada@example.com", "Welcome")
    ]


async def test_a_task_the_handler_started_is_waited_for(client):
    await User.aio_create(email="grace@example.com")
    response = await client.post("/newsletters", params={"subject": "News"})
    assert response.status_code == 202
    await asyncio.gather(*running)  # wait for the app's tasks before checking
    assert await Mail.select().where(Mail.subject == "News").aio_count() == 1


async def test_what_the_tasks_wrote_was_rolled_back(client):
    assert await User.select().aio_count() == 0
    assert await Mail.select().aio_count() == 0
