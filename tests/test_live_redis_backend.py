"""app/live/redis_backend.py relies on internals of Litestar's Redis pub/sub backend: these fail
when an upgrade changes them, before a Redis outage shows it in production."""

from __future__ import annotations

import inspect

from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from app.live.redis_backend import ResilientRedisBackend


def never_connected() -> Redis:
    return Redis.from_url("redis://127.0.0.1:1/0")  # no connection is made until a command runs


def test_the_backend_keeps_the_client_it_was_given_as_redis():
    client = never_connected()
    assert ResilientRedisBackend(redis=client)._redis is client


def test_the_backend_reads_events_from_one_pub_sub_that_can_reconnect():
    backend = ResilientRedisBackend(redis=never_connected())
    assert isinstance(backend._pub_sub, PubSub)
    assert backend._pub_sub is backend._pub_sub  # the one whose connect() resubscribes the stream
    assert inspect.iscoroutinefunction(backend._pub_sub.connect)
    # The stream the resilient backend restarts reads that same PubSub.
    assert inspect.isasyncgenfunction(RedisChannelsPubSubBackend.stream_events)
    assert "self._pub_sub.get_message(" in inspect.getsource(RedisChannelsPubSubBackend.stream_events)
