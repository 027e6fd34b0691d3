"""RedisStore on highly available Redis: a real Sentinel failover and a real Cluster.

Each test starts private servers of its own on free ports (redis-server as a
master, a replica, three sentinels, or three cluster masters) and kills them by
pid at the end, so the shared Redis is never touched.

- Sentinel: sessions are served, the master is killed; while the sentinels fail
  over, requests get ``503`` (never a ``500``, never a replaced cookie); after the
  failover, every session written (and replicated) before it is there, and the
  same store goes on with no restart. What can be lost is what the master had
  acknowledged but not yet sent to the replica: the test waits for the replica
  (``WAIT``) before killing, and the README states the window.
- Cluster: sessions spread over the three masters' slots, the Lua save merges on
  the node owning the key, a session of 1.0 is moved and deleted across two slots,
  and a dead node gives ``503`` to its sessions only.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request

from tests.conftest import SECRET, redis_record_name, redis_unpack, text_app, write_1_0
from tests.servers import RedisNode
from tests.services import in_ci, skip_or_fail
from wsgisession import RedisStore, SessionMiddleware, session, store_from_url

try:
    import redis
    from redis.cluster import RedisCluster
    from redis.sentinel import Sentinel
except ImportError:
    if in_ci():
        raise
    pytest.skip("the redis package is not installed", allow_module_level=True)

PURPOSE = "wsgisession.session:session"
SERVICE = "mymaster"


def visits(request: Request) -> str:
    key = request.args.get("key", "visits")
    session[key] = session.get(key, 0) + 1
    return str(session[key])


def wait_until(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def key_of(mw: SessionMiddleware, client: Client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    sid = mw.keyring.signer(PURPOSE).unsign(cookie.value).value.partition(b".")[0]
    return hashlib.sha256(sid).hexdigest()


def assert_outage_answer(response: TestResponse) -> None:
    assert response.status_code == 503, (response.status, response.text)
    assert response.headers.get("Retry-After")
    assert "Set-Cookie" not in response.headers


# -- Sentinel --------------------------------------------------------------------------


@dataclass
class Sentinels:
    master: RedisNode
    replica: RedisNode
    sentinels: list[RedisNode]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def master_port(self) -> int:
        probe = Sentinel([("127.0.0.1", self.sentinels[0].port)], socket_timeout=1)
        return int(probe.discover_master(SERVICE)[1])


def _info(port: int, section: str) -> dict[str, object]:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        info: dict[str, object] = client.info(section)
        return info
    except redis.RedisError:
        return {}
    finally:
        client.close()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    nodes: list[RedisNode] = []
    try:
        master = RedisNode(tmp_path / "master")
        nodes.append(master)
        master.start()
        replica = RedisNode(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port))
        nodes.append(replica)
        replica.start()
        wait_until(
            lambda: _info(replica.port, "replication").get("master_link_status") == "up",
            "the replica to sync",
        )
        watchers = []
        for i in range(3):
            sentinel = RedisNode(
                tmp_path / f"sentinel{i}",
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 5000",
                sentinel=True,
            )
            nodes.append(sentinel)
            sentinel.start()
            watchers.append(sentinel)

        def all_know_each_other() -> bool:
            for node in watchers:
                client = redis.Redis(port=node.port, socket_timeout=1, decode_responses=True)
                try:
                    state = client.sentinel_master(SERVICE)
                finally:
                    client.close()
                if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                    return False
            return True

        wait_until(all_know_each_other, "the sentinels to find each other and the replica")
        yield Sentinels(master, replica, watchers)
    finally:
        for node in nodes:
            node.kill()


def test_sentinel_failover_gives_503s_keeps_replicated_sessions_and_resumes(
    sentinels: Sentinels,
) -> None:
    store = store_from_url(f"{sentinels.url}?socket_timeout=0.5&prefix=ha:")
    assert isinstance(store, RedisStore)
    mw = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    clients = [Client(mw) for _ in range(5)]
    cookies = []
    for client in clients:
        for _ in range(3):
            assert client.get("/").status_code == 200
        cookie = client.get_cookie("session")
        assert cookie is not None
        cookies.append(cookie.value)
    # Replication is asynchronous: wait until the replica has every write, since
    # writes it has not received when the master dies are lost with the master.
    assert store.client.execute_command("WAIT", 1, 5000) == 1

    sentinels.master.kill()
    during: list[TestResponse] = []
    counts = [3] * len(clients)
    deadline = time.monotonic() + 60
    resumed = False
    while not resumed and time.monotonic() < deadline:
        resumed = True
        for i, client in enumerate(clients):
            response = client.get("/")
            during.append(response)
            if response.status_code == 200:
                counts[i] += 1
                assert response.text == str(counts[i])  # nothing lost, nothing doubled
            else:
                assert_outage_answer(response)
                resumed = False
        time.sleep(0.05)

    assert resumed, "service did not resume after the failover"
    assert sentinels.master_port() == sentinels.replica.port  # the replica took over
    assert any(response.status_code == 503 for response in during)
    assert {response.status_code for response in during} <= {200, 503}
    for client, cookie in zip(clients, cookies, strict=True):
        after = client.get_cookie("session")
        assert after is not None
        assert after.value == cookie  # never a replaced cookie
    # A new session starts on the new master too, with the same store object.
    assert Client(mw).get("/").text == "1"
    store.close()


def test_a_sentinel_master_for_client_serves_sessions_from_the_master(
    sentinels: Sentinels,
) -> None:
    sentinel = Sentinel(
        [("127.0.0.1", node.port) for node in sentinels.sentinels], socket_timeout=1
    )
    client = sentinel.master_for(SERVICE, socket_timeout=1)
    store = RedisStore(client=client, prefix="ha:")
    mw = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    browser = Client(mw)
    assert [browser.get("/").text for _ in range(3)] == ["1", "2", "3"]
    master = redis.Redis(port=sentinels.master.port)
    try:
        name = redis_record_name(store, key_of(mw, browser))
        assert redis_unpack(master.get(name)) == {"visits": b"3"}
    finally:
        master.close()
        client.close()


def test_a_sentinel_url_without_a_service_name_fails_at_start_up() -> None:
    from wsgisession.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="needs sentinels and a service name"):
        store_from_url("redis+sentinel://127.0.0.1:26379")


# -- Cluster ------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisNode]]:
    if subprocess.run(["which", "redis-cli"], capture_output=True).returncode:
        skip_or_fail("redis-cli is not installed")
    nodes = [
        RedisNode(
            tmp_path / f"node{i}",
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", "1000"),
            # Keep serving the slots that are up when a node is down.
            *("--cluster-require-full-coverage", "no"),
            cluster=True,
        )
        for i in range(3)
    ]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                *("redis-cli", "--cluster", "create"),
                *(f"127.0.0.1:{node.port}" for node in nodes),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(
            lambda: (
                all(_info(n.port, "cluster") for n in nodes)
                and all(
                    redis.Redis(port=n.port).cluster("info")["cluster_state"] == "ok" for n in nodes
                )
            ),
            "the cluster to be ok",
        )
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def test_cluster_spreads_sessions_merges_with_lua_and_a_dead_node_fails_only_its_sessions(
    cluster: list[RedisNode],
) -> None:
    client = RedisCluster(
        host="127.0.0.1", port=cluster[0].port, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    prefix = f"c{uuid4().hex[:6]}:"
    store = RedisStore(client=client, prefix=prefix)
    mw = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    browsers = [Client(mw) for _ in range(24)]
    for browser in browsers:
        assert browser.get("/").text == "1"
    owner = {}
    for browser in browsers:
        node = client.get_node_from_key(redis_record_name(store, key_of(mw, browser)))
        owner[browser] = int(node.port)
    assert set(owner.values()) == {node.port for node in cluster}  # every master has some

    # The Lua save (one key per script) merges concurrent changes of different keys.
    shared = browsers[0]
    cookie = shared.get_cookie("session")
    assert cookie is not None

    def increment(key: str) -> None:
        tab = Client(mw)
        tab.set_cookie("session", cookie.value)
        for _ in range(50):
            assert tab.get(f"/?key={key}").status_code == 200

    threads = [threading.Thread(target=increment, args=(key,)) for key in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.load(key_of(mw, shared)) == {"visits": b"1", "a": b"50", "b": b"50"}

    # A session of 1.0 (a hash under the store key) is moved on its first load and
    # deleted under both names: two keys, on two nodes' slots.
    for n in range(6):
        key = hashlib.sha256(b"old session %d" % n).hexdigest()
        old = write_1_0(client, prefix, key, {"visits": b"7"}, 600)
        if client.keyslot(old) == client.keyslot(redis_record_name(store, key)):
            continue  # (the same slot by chance: try another)
        assert store.load(key) == {"visits": b"7"}
        assert client.get(old) == b"moved"
        assert redis_unpack(client.get(redis_record_name(store, key))) == {"visits": b"7"}
        store.delete(key)
        assert client.exists(old) + client.exists(redis_record_name(store, key)) == 0
        write_1_0(client, prefix, key, {"visits": b"7"}, 600)
        store.delete(key)  # never loaded
        assert client.exists(old) == 0
        break
    else:
        pytest.fail("six old sessions whose two names share a slot")

    dead = cluster[2]
    dead.kill()
    for browser in browsers:
        response = browser.get("/")
        if owner[browser] == dead.port:
            assert_outage_answer(response)
        else:
            assert response.status_code == 200, response.text
            assert response.text == "2"
    client.close()
