from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pdfs import lorem, make_pdf  # noqa: E402

from rag.embedding import Embedder  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.settings import Settings  # noqa: E402

SHARED_DATA = Path(os.environ.get("RAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"evaluation data not found at {SHARED_DATA} (CI has it)"
)


def rag_cli(
    *args: str, env: dict | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `rag ARGS` as a user does, in its own process; `env` is added to this one's."""
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled MiniLM, loaded once for the whole run."""
    return Embedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index=tmp_path / "index")


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """A real Milvus gRPC server on 127.0.0.1 for the whole run (milvus-lite's `server`): the path
    a cluster's URI takes, which several processes can share (a milvus-lite file cannot)."""
    port = free_port()
    data = tmp_path_factory.mktemp("milvus")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(data),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "w"),
    )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert server.poll() is None and time.monotonic() < deadline, (data / "server.log").read_text()
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server of its own (Debian's `postgresql`; .ci/run installs it) on
    127.0.0.1 for the whole run, in a temporary cluster that goes with it."""
    initdb = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not initdb:
        pytest.skip("PostgreSQL's server is not installed (apt-get install postgresql; .ci/run does)")
    bin_dir = initdb[-1].parent
    data = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True, timeout=120)
    run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust"])
    run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-w", "-l", str(data / "log"),
         "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"])
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "stop"],
                   capture_output=True, timeout=60)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["local", "milvus"])
def store_settings(request, tmp_path: Path) -> Settings:
    """`settings` once per index backend: FAISS + bm25s files, and Milvus (a server)."""
    if request.param == "local":
        return Settings(index=tmp_path / "index")
    uri = request.getfixturevalue("milvus_uri")
    return Settings(index=tmp_path / "index", index_backend="milvus", milvus_uri=uri)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three PDFs with known facts on known pages."""
    return make_corpus(tmp_path / "pdfs")


def make_corpus(folder: Path) -> Path:
    """The `corpus` fixture's PDFs, in `folder`, for fixtures of a wider scope."""
    folder.mkdir(parents=True)
    make_pdf(folder / "zoo.pdf", [
        lorem("zoo", 20),
        "Zebras migrate across the Serengeti every July in search of fresh grass.",
        lorem("zoo", 40),
    ])
    make_pdf(folder / "plants.pdf", [
        "Photosynthesis turns sunlight into chemical energy inside chloroplasts.",
        lorem("garden", 30),
    ])
    make_pdf(folder / "space.pdf", [
        lorem("orbit", 10),
        lorem("orbit", 10),
        lorem("orbit", 10),
        "Jupiter's moon Europa hides a salty ocean beneath its icy crust.",
    ])
    return folder


@pytest.fixture(scope="session")
def generator():
    """The real bundled SmolLM2-135M-Instruct in the default engine, onnx (converted from its GGUF
    and exported once, then cached)."""
    from rag.onnx_generation import OnnxGenerator

    return OnnxGenerator()


@pytest.fixture(scope="session")
def transformers_generator():
    """The same model in the transformers engine (adapters; the onnx engine's reference)."""
    from rag.generation import TransformersGenerator

    return TransformersGenerator()


def notes(topic: str, n: int = 14) -> str:
    """Neutral filler (no finance words), so that a page is longer than one chunk."""
    return " ".join(f"Note {i}: the {topic} committee met in room {i + 3} to review the travel policy."
                    for i in range(n))


def make_reports(folder: Path) -> Path:
    """Two annual reports with one fact each on known pages: a corpus to ask questions of."""
    folder.mkdir(parents=True, exist_ok=True)
    make_pdf(folder / "acme_2021.pdf", [
        "Acme Corporation annual report 2021. " + notes("board"),
        "Acme Corporation's revenue in 2021 was 4.2 billion dollars, up 8 percent from 2020. "
        + notes("audit"),
        "Acme's capital expenditure in 2021 was 310 million dollars, spent on two new factories. "
        + notes("safety"),
    ])
    make_pdf(folder / "acme_2022.pdf", [
        "Acme Corporation annual report 2022. " + notes("board"),
        "Acme Corporation's revenue in 2022 was 5.1 billion dollars, up 21 percent from 2021. "
        + notes("audit"),
        notes("garden"),
    ])
    return folder


def covers(item, doc: str, page: int) -> bool:
    """Whether a citation or search result (dataclass or JSON dict) spans `page` of `doc`."""
    fields = item if isinstance(item, dict) else vars(item)
    first = fields.get("page", fields.get("page_start"))
    return fields["doc"] == doc and first <= page <= fields["page_end"]


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return make_reports(tmp_path / "reports")


# three short documents of two pages of plain facts: fine-tuning and reranking tests train on them
FACTS = {
    "volcanoes.pdf": [
        "Mount Etna on Sicily is one of the most active volcanoes in Europe and erupts every few years. "
        "Lava from its summit craters has reached the town of Catania several times in recorded history. "
        "Volcanologists measure sulphur dioxide in the plume to forecast new eruptions on the mountain. "
        "Farmers grow pistachios and grapes in the fertile volcanic soil on the lower slopes of Etna.",
        "Iceland sits on the Mid-Atlantic Ridge, where the North American and Eurasian plates drift apart. "
        "The eruption of Eyjafjallajokull in 2010 closed European airspace for six days because of ash. "
        "Geothermal power stations in Iceland turn underground heat into electricity for aluminium smelters. "
        "Hot springs such as the Blue Lagoon draw visitors who bathe in mineral-rich warm water all year.",
    ],
    "bees.pdf": [
        "Honey bees communicate the direction of flowers to their sisters with a waggle dance in the hive. "
        "A worker bee lives about six weeks in summer and spends its last days foraging for nectar. "
        "The queen lays up to two thousand eggs a day during the spring build-up of the colony. "
        "Beekeepers treat colonies against the varroa mite, a parasite that spreads viruses among bees.",
        "Bumblebees can fly in colder weather than honey bees because they shiver to warm their muscles. "
        "Tomato growers release bumblebees in greenhouses to shake pollen loose by buzz pollination. "
        "Wild solitary bees nest in hollow stems, sandy banks and holes in dead wood rather than in hives. "
        "Planting wildflower strips along field margins gives pollinators food between crop flowering times.",
    ],
    "trains.pdf": [
        "The Shinkansen high-speed line between Tokyo and Osaka opened in 1964, before the Olympic Games. "
        "Its trains tilt slightly in curves and reach 285 kilometres per hour on the Tokaido route. "
        "Earthquake sensors along the track cut the power so that trains brake before shaking arrives. "
        "Cleaning crews turn a train around at Tokyo station in seven minutes between two journeys.",
        "The Glacier Express crosses the Swiss Alps from Zermatt to St. Moritz in about eight hours. "
        "It climbs over the Oberalp Pass on a rack railway section where a cog wheel grips the track. "
        "Panoramic windows in the carriages let travellers see the Landwasser Viaduct and its stone arches. "
        "Narrow gauge track lets the line take tight curves through the mountain valleys of Graubunden.",
    ],
}


@pytest.fixture
def prose_index(tmp_path: Path, settings, embedder):
    folder = tmp_path / "prose"
    folder.mkdir()
    for name, pages in FACTS.items():
        make_pdf(folder / name, pages)
    settings.chunk_size, settings.chunk_overlap = 48, 8  # a few sentences a chunk: many chunks
    ingest([folder], settings, progress=False, embedder=embedder)
    return settings
