"""The search benchmark's data set: many users' conversations of chat-like text, generated in
Python from a fixed seed and loaded with COPY.

Messages are English sentences drawn from a vocabulary with a Zipf-like spread (a few words
everywhere, most words rare), some carrying order numbers (ORD-2024-nnnnn) and error codes
(Ennnn), and a share written in Japanese or Chinese. Every user gets the same shape of history,
so "a user's own history" means the same amount of work whichever user a request picks.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bench import dataset

SEED = 20260516
START = datetime(2025, 1, 1, tzinfo=UTC)
# Words a support or product chat uses, most frequent first: the weights fall as 1 / rank.
_WORDS = (
    "the to and a of I you it is for in that this we can with be on have not my your will are "
    "do at what so if please order thanks help need could would should there about just like "
    "get know see time one now when also out more here how check account issue problem again "
    "send team today update new email support working looks sure still payment make back set "
    "user date data file report price plan week customer question change use link page review "
    "delivery invoice refund error server database request access login password release build "
    "test deploy feature bug version config message history search cache queue worker timeout "
    "migration backup schema index query latency throughput memory disk network certificate "
    "subscription discount shipping warehouse tracking address receipt contract renewal quote "
    "budget forecast meeting agenda summary draft proposal deadline milestone roadmap sprint "
    "invoices refunds payments deliveries orders errors servers timeouts migrations backups "
    "approved rejected pending shipped delayed cancelled failed succeeded retried escalated "
    "kubernetes postgres redis nginx terraform grafana prometheus python typescript golang "
    "photosynthesis archipelago saxophone hieroglyph labyrinth marmalade quasar zeppelin"
)
VOCABULARY = _WORDS.split()
WEIGHTS = [1 / rank for rank in range(1, len(VOCABULARY) + 1)]
JAPANESE = (
    "請求書について確認してください",
    "注文の配送状況を教えてください",
    "パスワードを再設定できません",
    "返金の手続きはいつ完了しますか",
    "データベースの移行が終わりました",
    "会議の議事録を送ります",
)
CHINESE = (
    "请帮我查一下发票的状态",
    "订单已经发货了吗",
    "数据库连接超时了",
    "我们下周开会讨论预算",
)


@dataclass(frozen=True)
class Shape:
    users: int
    conversations: int  # per user
    messages: int  # per conversation

    @property
    def total(self) -> int:
        return self.users * self.conversations * self.messages


def user_id(n: int) -> str:
    return f"user-{n}"


def order_number(rng: random.Random) -> str:
    return f"ORD-2024-{rng.randrange(100_000):05d}"


def error_code(rng: random.Random) -> str:
    return f"E{rng.randrange(10_000):04d}"


def content(rng: random.Random) -> str:
    """One message: a sentence or three, now and then an identifier or another script."""
    roll = rng.random()
    if roll < 0.04:
        return "".join(rng.choice(JAPANESE) for _ in range(rng.randint(1, 3))) + "。"
    if roll < 0.06:
        return "\uff0c".join(rng.choice(CHINESE) for _ in range(rng.randint(1, 3))) + "。"
    words = rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(8, 60))
    if roll < 0.12:
        words.insert(rng.randrange(len(words)), order_number(rng))
    elif roll < 0.16:
        words.insert(rng.randrange(len(words)), f"error {error_code(rng)}")
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _conversation_id(user: int, n: int, shape: Shape) -> str:
    # Numbered from 1 as bench/sql/dataset.sql numbers them, so that pgbench scripts pick one
    # at random (bench/pgbench_scripts.py).
    return dataset.derived_id("bench-", user * shape.conversations + n + 1)


def rows(shape: Shape) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """(conversation rows, message rows), one user at a time, from the fixed seed."""
    rng = random.Random(SEED)  # noqa: S311 - reproducible text, not secrets
    for user in range(shape.users):
        conversations: list[tuple[object, ...]] = []
        messages: list[tuple[object, ...]] = []
        for n in range(shape.conversations):
            conversation_id = _conversation_id(user, n, shape)
            started = START + timedelta(minutes=rng.randrange(525_600))
            for seq in range(1, shape.messages + 1):
                messages.append(
                    (
                        conversation_id,
                        seq,
                        uuid.UUID(int=rng.getrandbits(128), version=4),
                        "user" if seq % 2 else "assistant",
                        content(rng),
                        started + timedelta(seconds=30 * seq),
                    )
                )
            title = " ".join(rng.choices(VOCABULARY[40:], k=3)).capitalize()
            updated = started + timedelta(seconds=30 * shape.messages)
            conversations.append(
                (
                    conversation_id,
                    user_id(user),
                    title,
                    shape.messages,
                    shape.messages,
                    started,
                    updated,
                )
            )
        yield conversations, messages


CONVERSATION_COLUMNS = (
    "id",
    "user_id",
    "title",
    "message_count",
    "last_seq",
    "created_at",
    "updated_at",
)
MESSAGE_COLUMNS = ("conversation_id", "seq", "id", "role", "content", "created_at")
# Users per COPY: about 50,000 messages in memory at a time.
USERS_PER_COPY = 50


async def load(conn: asyncpg.Connection, shape: Shape) -> None:
    """COPY the data set in (conversations before their messages)."""
    conversations: list[tuple[object, ...]] = []
    messages: list[tuple[object, ...]] = []
    for index, (user_conversations, user_messages) in enumerate(rows(shape), start=1):
        conversations += user_conversations
        messages += user_messages
        if index % USERS_PER_COPY == 0 or index == shape.users:
            await conn.copy_records_to_table(
                "conversations", records=conversations, columns=CONVERSATION_COLUMNS
            )
            await conn.copy_records_to_table("messages", records=messages, columns=MESSAGE_COLUMNS)
            conversations, messages = [], []
