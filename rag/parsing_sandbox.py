"""Parsing untrusted PDFs in a worker process, so that a hostile file costs that file only.

PDF parsers are C code fed with attacker-controlled bytes: a file can make pdfium segfault,
allocate without bound (a Flate bomb expands a few KB into gigabytes) or loop for ever. Done in
the ingesting process (the CLI, or the server's job thread) that takes the whole process down.
Here each file is parsed by a worker process that has a memory limit (RLIMIT_AS), a wall-clock
limit, and page and character caps (checked as pages are read, so a bomb stops early). A file
over a limit, or one whose worker crashes, becomes a DocumentError naming the limit it hit; the
worker is replaced and the next file goes on.

One worker is reused across files (a fresh interpreter per file would add its start, 0.1 to
0.4 s, to every file: more than pdfium needs for a short one) and started lazily, at the first
file of an ingest run. It is a plain `python -c` subprocess talking over two pipes, not a
multiprocessing child: fork would copy the parent's torch threads, and spawn or forkserver
re-import the caller's `__main__`, which breaks scripts without a `__name__` guard. A
replacement after a crash costs one interpreter start (about 0.1 s of CPU: only pypdfium2 and
rag.documents are imported).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from rag.documents import DocumentError, extract_pages, pdf_title
from rag.ocr import MEMORY_MB as OCR_MEMORY_MB
from rag.ocr import available as ocr_available

if TYPE_CHECKING:  # the worker imports this module: no torch, no settings machinery
    from rag.settings import Settings

_ROOT = str(Path(__file__).resolve().parents[1])  # where `rag` is imported from, for the worker
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from rag.parsing_sandbox import _serve; _serve()"


@dataclass(frozen=True)
class Limits:
    """What one file may cost; the defaults are those of Settings (RAG_PARSE_*, RAG_MAX_*)."""

    memory_mb: int = 1024
    timeout_s: float = 60.0
    max_pages: int = 2000
    max_chars: int = 5_000_000
    ocr: str = "never"  # not a limit: how the worker reads pages without text (rag.ocr)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        s = settings
        ocr = s.ocr if s.ocr == "never" or ocr_available() else "never"
        return cls(s.parse_memory_mb, s.parse_timeout_s, s.max_pages, s.max_chars, ocr)


@dataclass
class ParsedFile:
    pages: list[str]
    title: str | None  # the PDF's own Title metadata


class _Worker:
    """One worker process and the two pipes to it (requests in, answers out)."""

    def __init__(self, limits: Limits):
        request_r, self._request_w = os.pipe()
        self._answer_r, answer_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, _ROOT, str(request_r), str(answer_w),
                 json.dumps(asdict(limits))],
                pass_fds=(request_r, answer_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )
        finally:
            os.close(request_r)
            os.close(answer_w)
        self.requests = Connection(self._request_w, readable=False)
        self.answers = Connection(self._answer_r, writable=False)

    def stop(self) -> int | None:
        """Kill the process (if still running) and close the pipes; returns its exit status."""
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        self.requests.close()
        self.answers.close()
        return code


class ParsingSandbox:
    """Parses files one at a time in a reused worker process; thread-safe. Use it as a context
    manager (or call `close`) so that the worker does not outlive the run."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._closed = False

    def __enter__(self) -> ParsingSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def loaders(self, path: Path, extractor: str) -> tuple[Callable[[], list[str]], Callable[[], str | None]]:
        """`Source.load` and `Source.read_title` for one file: one parse gives both."""
        title: list[str | None] = [None]

        def load() -> list[str]:
            parsed = self.parse(path, extractor)
            title[0] = parsed.title
            return parsed.pages

        return load, lambda: title[0]

    def parse(self, path: Path, extractor: str = "pdfium") -> ParsedFile:
        """Pages and title of one PDF; raises DocumentError, including for the sandbox's limits."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the parsing sandbox is closed")
            if self._worker is None or self._worker.process.poll() is not None:
                self._stop()
                self._worker = _Worker(self.limits)
            worker = self._worker
            try:
                worker.requests.send((str(path), extractor))
                answered = worker.answers.poll(self.limits.timeout_s)
            except OSError:
                answered = True  # the worker died before reading: recv reports it
            if not answered:
                self._stop()
                raise DocumentError(
                    "timeout",
                    f"parsing took more than {self.limits.timeout_s:g} s (RAG_PARSE_TIMEOUT_S)",
                )
            try:
                status, *payload = worker.answers.recv()
            except (OSError, EOFError):
                raise self._crashed() from None
            if status == "ok":
                return ParsedFile(*payload)
            kind, message = payload
            if kind == "out-of-memory":
                self._stop()  # a worker that ran out of memory is not trusted with the next file
            raise DocumentError(kind, message)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    def _stop(self) -> int | None:
        code = self._worker.stop() if self._worker is not None else None
        self._worker = None
        return code

    def _crashed(self) -> DocumentError:
        assert self._worker is not None
        try:
            code: int | None = self._worker.process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self._stop()
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exit status {code}"
        return DocumentError(
            "crashed",
            f"the PDF parser crashed ({how}); a parser that hits its memory limit of "
            f"{self.limits.memory_mb} MB (RAG_PARSE_MEMORY_MB) can end so",
        )


def _serve() -> None:
    """The worker (`python -c _BOOT ROOT REQUEST_FD ANSWER_FD LIMITS`): parse each path sent,
    answer ("ok", pages, title) or ("error", kind, message); exit when the parent is gone."""
    requests = Connection(int(sys.argv[2]), writable=False)
    answers = Connection(int(sys.argv[3]), readable=False)
    limits = Limits(**json.loads(sys.argv[4]))
    warnings.simplefilter("ignore")  # damaged files are reported, not warned about
    # OCR's onnxruntime maps ~1.3 GB of address space (measured: 1,280 MB in all fails, 1,536
    # works): its allowance comes on top of what a file may cost
    limit = (limits.memory_mb + (OCR_MEMORY_MB if limits.ocr != "never" else 0)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file behind
    while True:
        try:
            path, extractor = requests.recv()
        except (EOFError, OSError):
            return
        # should the parent die mid-parse, the default SIGALRM action ends a parse that hangs
        signal.alarm(int(limits.timeout_s) + 5)
        try:
            pages = extract_pages(Path(path), extractor, limits.max_pages, limits.max_chars, limits.ocr)
            answer: tuple = ("ok", pages, pdf_title(Path(path)))
        except DocumentError as err:
            answer = ("error", err.kind, str(err))
        except MemoryError:
            answer = ("error", "out-of-memory",
                      f"parsing needs more than {limits.memory_mb} MB of memory (RAG_PARSE_MEMORY_MB)")
        except Exception as err:  # noqa: BLE001 - one unreadable file, reported as such
            answer = ("error", "corrupt", f"cannot read: {type(err).__name__}: {err}")
        signal.alarm(0)
        try:
            answers.send(answer)
        except MemoryError:
            os._exit(1)  # could not even build the answer: the parent reports a crash
        except OSError:
            return
