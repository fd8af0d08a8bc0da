"""Generation beyond one engine: several OpenAI-compatible replicas behind the openai engine, and
vLLM's parallel sizes passed through. The replicas are small OpenAI-compatible test servers
(tests/openai_stub.py) on real HTTP with the real openai client: the test is about the routing
and failover, and two vLLMs do not fit beside the test run on 2 cores."""

import os
import stat
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from live_server import Server
from openai_stub import stub_app

from rag.engines import load_generator, open_generator
from rag.generation import generate
from rag.replicas import NoReplicaAvailable, ReplicaPool
from rag.settings import Settings

ASK = [{"role": "user", "content": "Which replica are you?"}]


def answered_by(pool: ReplicaPool) -> str:
    return generate(pool, ASK).split()[0]


def test_concurrent_requests_go_to_the_replica_with_fewest_in_flight() -> None:
    alpha, beta = Server(stub_app("alpha")), Server(stub_app("beta"))
    try:
        pool = load_generator("openai", "stub", base_url=f"{alpha.url}/v1, {beta.url}/v1")
        assert isinstance(pool, ReplicaPool)
        with ThreadPoolExecutor(8) as threads:  # all 8 in flight together: 4 each
            replies = list(threads.map(lambda _: answered_by(pool), range(8)))
        assert Counter(replies) == {"alpha": 4, "beta": 4}
        assert pool.outstanding == [0, 0]
    finally:
        alpha.stop()
        beta.stop()


def test_a_slow_replica_gets_fewer_requests() -> None:
    fast, slow = Server(stub_app("fast", token_delay_s=0.005)), Server(stub_app("slow", token_delay_s=0.1))
    try:
        pool = load_generator("openai", "stub", base_url=f"{fast.url}/v1,{slow.url}/v1")
        with ThreadPoolExecutor(2) as threads:  # two clients, each asking as soon as it is answered
            replies = list(threads.map(lambda _: answered_by(pool), range(20)))
        counts = Counter(replies)
        assert counts["fast"] + counts["slow"] == 20 and counts["fast"] >= 3 * counts["slow"], counts
    finally:
        fast.stop()
        slow.stop()


def test_a_failed_replica_is_left_out_then_tried_again() -> None:
    alpha, beta = Server(stub_app("alpha")), Server(stub_app("beta"))
    pool = ReplicaPool([f"{alpha.url}/v1", f"{beta.url}/v1"], "stub", retry_after_s=1.0, timeout=10)
    try:
        beta.stop()
        assert [answered_by(pool) for _ in range(4)] == ["alpha"] * 4  # no request lost
        assert pool.down_until[1] > time.monotonic() and pool.served == [4, 0]
        beta = Server(stub_app("beta"), port=beta.port)  # back where it was
        time.sleep(1.1)
        assert "beta" in {answered_by(pool) for _ in range(2)}  # tried again once its time is over
        alpha.stop()
        beta.stop()
        with pytest.raises(NoReplicaAvailable) as refused:
            answered_by(pool)
        assert f"{alpha.url}/v1: Connection error" in str(refused.value)
        assert f"{beta.url}/v1: Connection error" in str(refused.value)
    finally:
        alpha.stop()
        beta.stop()


def test_settings_give_several_base_urls_to_the_openai_engine() -> None:
    alpha = Server(stub_app("alpha"))
    try:
        settings = Settings(engine="openai", llm_model="stub", llm_base_url=f"{alpha.url}/v1,{alpha.url}/v1")
        pool = open_generator(settings)
        assert isinstance(pool, ReplicaPool) and pool.urls == [f"{alpha.url}/v1"] * 2
        assert answered_by(pool) == "alpha"
    finally:
        alpha.stop()


def test_vllm_parallel_sizes_reach_vllm_command_line(tmp_path: Path) -> None:
    # plumbing only: a stand-in for vLLM's python records the command it is given and exits
    args_file = tmp_path / "args.txt"
    fake_python = tmp_path / "python"
    fake_python.write_text(f'#!/bin/sh\necho "$@" > {args_file}\nexit 3\n')
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    settings = Settings(
        engine="vllm", vllm_python=str(fake_python), vllm_tensor_parallel=2, vllm_pipeline_parallel=3,
        vllm_data_parallel=1,
    )
    with pytest.raises(ValueError, match="vLLM did not start.*code 3"):
        open_generator(settings, vllm_log=tmp_path / "vllm.log")
    args = args_file.read_text().split()
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--pipeline-parallel-size") + 1] == "3"
    assert "--data-parallel-size" not in args  # a size of 1 is vLLM's default: not passed
    assert os.path.basename(args[args.index("--served-model-name") - 1])  # the model directory came first
