"""Several OpenAI-compatible servers (vLLM replicas on other hosts) behind one generator.

Each request goes to the replica with the fewest requests in flight from this process (least
outstanding requests: a replica that answers slowly, a long answer or a busy GPU, gets fewer).
A replica that cannot be reached, or fails before sending a token, is taken out for
`retry_after_s` and the request goes to the next one; once that time is over it is tried again.
A stream that breaks after its first token is not retried: its words are already with the
client, so the error goes to the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from rag.generation import Message, OpenAIGenerator

RETRY_AFTER_S = 30.0
log = logging.getLogger(__name__)


class NoReplicaAvailable(RuntimeError):
    """Every replica failed or is taken out."""


class ReplicaPool:
    """Generate through whichever of `base_urls` has the fewest requests in flight.

    Args:
        base_urls: e.g. ["http://gpu1:8001/v1", "http://gpu2:8001/v1"], all serving `model`.
        retry_after_s: how long a failed replica is left out before it is tried again.
    """

    def __init__(
        self, base_urls: list[str], model: str, api_key: str | None = None,
        retry_after_s: float = RETRY_AFTER_S, timeout: float = 300,
    ):
        if not base_urls:
            raise ValueError("a replica pool needs at least one base URL")
        self.name = model
        # no retries inside the client: a failed replica's request goes to the next one at once
        self.replicas = [OpenAIGenerator(url, model, api_key, timeout, max_retries=0) for url in base_urls]
        self.urls = list(base_urls)
        self.context_length = self.replicas[0].context_length
        self.retry_after_s = retry_after_s
        self.outstanding = [0] * len(base_urls)
        self.served = [0] * len(base_urls)  # requests each replica completed (for tests and status)
        self.down_until = [0.0] * len(base_urls)
        self._lock = threading.Lock()

    def _pick(self, tried: set[int]) -> int | None:
        """The healthy untried replica with the fewest in flight (ties: the one used least), taken."""
        with self._lock:
            now = time.monotonic()
            healthy = [
                i for i in range(len(self.replicas)) if i not in tried and self.down_until[i] <= now
            ]
            if not healthy:
                return None
            best = min(healthy, key=lambda i: (self.outstanding[i], self.served[i]))
            self.outstanding[best] += 1
            return best

    def _done(self, i: int, failed: bool) -> None:
        with self._lock:
            self.outstanding[i] -= 1
            if failed:
                self.down_until[i] = time.monotonic() + self.retry_after_s
            else:
                self.served[i] += 1

    def stream(
        self, messages: list[Message], max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        tried: set[int] = set()
        errors: list[str] = []
        while (i := self._pick(tried)) is not None:
            tried.add(i)
            started = False
            try:
                for piece in self.replicas[i].stream(messages, max_tokens, temperature):
                    started = True
                    yield piece
            except GeneratorExit:
                self._done(i, failed=False)  # the caller stopped reading: not the replica's fault
                raise
            except Exception as err:  # the openai client raises its own types for every network fault
                self._done(i, failed=True)
                log.warning("replica %s failed, out for %.0f s: %s", self.urls[i], self.retry_after_s, err)
                if started:
                    raise
                errors.append(f"{self.urls[i]}: {err}")
                continue
            self._done(i, failed=False)
            return
        raise NoReplicaAvailable(
            "no generation replica answered: " + ("; ".join(errors) or "all are left out after failures")
        )
