"""API replicas: sessions, jobs and the writer's turn shared through a real PostgreSQL server
(the `postgres_url` fixture starts one). Two `rag serve` apps on two real uvicorn servers over one
index and one state URL stand for two replicas behind a load balancer; their generator is a
small OpenAI-compatible test server (tests/openai_stub.py): the test is about shared state."""

import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import make_corpus
from live_server import Server
from openai_stub import stub_app
from pdfs import lorem, make_pdf

from indexes import IndexLocked
from rag.conversation import SessionStore, open_session_store
from rag.engines import load_generator
from rag.sessions_postgres import PostgresSessionStore, connect
from rag.settings import Settings
from serve.app import create_app
from serve.job_table import JobTable

KEY = "replica-test-key"


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request, tmp_path):
    if request.param == "sqlite":
        return SessionStore(tmp_path / "sessions.sqlite")
    return PostgresSessionStore(request.getfixturevalue("postgres_url"), scope=f"t{time.time_ns()}")


def test_both_session_stores_keep_conversations_alike(sessions) -> None:
    sid = sessions.create(owner="ann")
    assert sessions.owned_by(sid, "ann") and not sessions.owned_by(sid, "bob") and sessions.exists(sid)
    sessions.append(sid, "user", "What was Acme's revenue?")
    sessions.append(sid, "assistant", "6.0 billion [1]", {"citations": [1]})
    assert [t["role"] for t in sessions.turns(sid)] == ["user", "assistant"]
    assert sessions.turns(sid)[1]["extra"] == {"citations": [1]}
    assert sessions.messages(sid, last_turns=1)[0]["content"] == "What was Acme's revenue?"
    listed = sessions.recent("ann")
    assert [(s["id"], s["turns"], s["title"]) for s in listed] == [(sid, 2, "What was Acme's revenue?")]
    assert sessions.recent("bob") == [] and sessions.recent(None) == []
    with pytest.raises(ValueError, match="session id"):
        sessions.create("bad id with spaces")
    assert sessions.delete(sid) and not sessions.exists(sid) and sessions.turns(sid) == []


def test_a_postgres_url_selects_the_shared_store(postgres_url, tmp_path) -> None:
    shared = open_session_store(Settings(index=tmp_path / "index", state_url=postgres_url, collection="c1"))
    assert isinstance(shared, PostgresSessionStore) and shared.scope == "c1"
    assert isinstance(open_session_store(Settings(sessions=tmp_path / "s.sqlite")), SessionStore)
    with pytest.raises(ValueError, match="cannot connect to the state database"):
        open_session_store(Settings(state_url="postgresql://postgres@127.0.0.1:1/postgres"))


@pytest.fixture
def replicas(tmp_path: Path, embedder, postgres_url, milvus_uri):
    """Two API replicas over one index folder, one Milvus server and one PostgreSQL (the shape of
    a deployment that outgrew one process), with the corpus uploaded."""
    stub = Server(stub_app("stub", token_delay_s=0.01))
    index = tmp_path / "index"
    make_corpus(tmp_path / "index-documents")  # the uploads folder both replicas re-index
    servers = []
    for name in ("a", "b"):
        settings = Settings(
            index=index, sessions=tmp_path / f"sessions-{name}.sqlite", api_keys=KEY, state_url=postgres_url,
            index_backend="milvus", milvus_uri=milvus_uri,
            engine="openai", llm_model="stub", llm_base_url=f"{stub.url}/v1", min_similarity=-1.0,
        )
        generator = load_generator("openai", "stub", f"{stub.url}/v1")
        servers.append(Server(create_app(settings, generator, embedder)))
    auth = {"Authorization": f"Bearer {KEY}"}
    clients = [httpx.Client(base_url=s.url, headers=auth, timeout=120) for s in servers]
    job = clients[0].post("/v1/reindex").json()
    assert wait_for(clients[0], job["id"])["status"] == "done"
    yield servers, clients
    for c in clients:
        c.close()
    for s in [*servers, stub]:
        s.stop()


def wait_for(client: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_conversation_started_on_one_replica_continues_on_the_other(replicas) -> None:
    servers, clients = replicas
    a, b = (openai.OpenAI(base_url=f"{s.url}/v1", api_key=KEY, timeout=120) for s in servers)
    first = a.chat.completions.create(
        model="ragstack", messages=[{"role": "user", "content": "Where do zebras migrate in July?"}]
    )
    session = first.model_extra["session_id"]
    assert session and clients[1].get(f"/v1/sessions/{session}").status_code == 200  # seen on b
    b.chat.completions.create(
        model="ragstack", messages=[{"role": "user", "content": "And when?"}],
        extra_body={"session_id": session},
    )
    turns = clients[0].get(f"/v1/sessions/{session}").json()["turns"]  # read back on a
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[0]["content"] == "Where do zebras migrate in July?" and turns[2]["content"] == "And when?"
    assert [s["id"] for s in clients[1].get("/v1/sessions").json()["data"]] == [session]


def test_jobs_are_seen_by_every_replica_and_writers_take_turns(replicas, tmp_path) -> None:
    _, (a, b) = replicas
    for i in range(4):  # work enough that the two jobs overlap
        make_pdf(tmp_path / "index-documents" / f"minutes_{i}.pdf", [lorem(f"meeting{i}", 60)] * 2)
    # both replicas asked to re-index at once: the writer lock lets one write at a time
    jobs = [a.post("/v1/reindex").json(), b.post("/v1/reindex").json()]
    done = [wait_for(b, jobs[0]["id"]), wait_for(a, jobs[1]["id"])]  # each job read on the other replica
    assert [j["status"] for j in done] == ["done", "done"], done
    first, second = sorted(done, key=lambda j: j["started"])
    assert second["lock_waits"] > 0 or second["started"] >= first["finished"]
    # what each wrote did not overlap: the second finished its writing after the first had published
    assert second["finished"] >= first["finished"]
    assert b.get("/v1/jobs/no-such-job").status_code == 404
    assert len(a.get("/v1/documents").json()["data"]) == 7
    found = b.post("/v1/search", json={"query": "Where do zebras migrate in July?", "k": 1}).json()
    assert found["results"][0]["doc"] == "zoo.pdf"  # searched in Milvus, through the API


def test_the_writer_lock_is_one_across_replicas_and_freed_by_a_dying_holder(postgres_url) -> None:
    one, other = JobTable(postgres_url, "lock-test"), JobTable(postgres_url, "lock-test")
    with one.writer_turn("collection-x"):
        with pytest.raises(IndexLocked):
            with other.writer_turn("collection-x"):
                pass
        with other.writer_turn("collection-y"):  # another index: its own lock
            pass
    with other.writer_turn("collection-x"):  # released
        pass
    # a replica that dies with the lock: its connection goes, and the lock with it
    holder = connect(postgres_url)
    holder.execute("SELECT pg_advisory_lock(hashtext('collection-x'))")
    with pytest.raises(IndexLocked):
        with one.writer_turn("collection-x"):
            pass
    holder.close()
    with one.writer_turn("collection-x"):
        pass
