"""Django's Redis cache backend, minus a per-operation cost.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` object for every
cache operation. With redis-py 5+ that constructor rebuilds its table of ~170 response
callbacks each time, which costs more CPU than the Redis round trip itself on loopback
(profiled on the voice token endpoint: 3 cache operations per request). A `redis.Redis`
is thread-safe and only wraps the shared connection pool, so one per pool is enough.
Behaviour is otherwise Django's own backend (same serializer, pools, options, keys).
"""
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class ReusingRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache` with one `redis.Redis` client per connection pool."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
