"""A FastAPI app that works after it answers: a welcome mail for each sign-up
(BackgroundTasks), a newsletter to everyone (asyncio.create_task)."""

import asyncio

import peewee
import peewee_async
from fastapi import BackgroundTasks, FastAPI

database = peewee_async.PostgresqlDatabase("signups", host="db.example.com")


class User(peewee_async.AioModel):
    email = peewee.CharField(unique=True)

    class Meta:
        database = database


class Mail(peewee_async.AioModel):  # the outbox: a mailer sends what is here
    to = peewee.CharField()
    subject = peewee.CharField()

    class Meta:
        database = database


app = FastAPI()
running = set()  # the tasks the app started, kept so that they are not lost


async def send_welcome(email):
    await Mail.aio_create(to=email, subject="Welcome")


async def send_newsletter(subject):
    for user in await User.select().order_by(User.id).aio_execute():
        await Mail.aio_create(to=user.email, subject=subject)


@app.post("/signups", status_code=201)
async def sign_up(email: str, background_tasks: BackgroundTasks):
    user = await User.aio_create(email=email)
    background_tasks.add_task(send_welcome, email)
    return {"id": user.id}


@app.post("/newsletters", status_code=202)
async def newsletter(subject: str):
    task = asyncio.create_task(send_newsletter(subject))
    running.add(task)
    task.add_done_callback(running.discard)
    return {}
