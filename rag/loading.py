"""One model load at a time in a process.

While transformers builds a model it swaps torch's weight-init functions (and more) for its own,
process-wide, and puts them back afterwards. Two threads loading at once (a server following a
re-index while it answers, a reader thread beside `rag reindex`) can each restore the other's
swap, leaving the process patched: a later 4-bit load then kept its tied `lm_head` on the meta
device and training failed. Every load in ragstack holds this lock.
"""

from __future__ import annotations

import threading

# re-entrant: loading the generator may first convert the bundled GGUF, which loads too
model_loading = threading.RLock()
