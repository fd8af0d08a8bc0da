"""A generated corpus of broken and hostile PDFs, to show that ingestion survives them.

`make_hostile_corpus(folder)` writes 200+ files (about 3 MB, a few seconds) and returns what each
must come to: the DocumentError kind it fails with, a set of kinds where the parser's way of
failing is not ours to fix (a truncated file may be repaired, or not), or None for a file that
must be indexed (a valid PDF under a hostile name, a broken xref that readers repair).
Everything is raw bytes or fpdf2; no extra dependency.

    python tests/hostile_pdfs.py OUT_DIR      # writes the corpus, prints its expectations (JSON)
"""

from __future__ import annotations

import json
import random
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from pdfs import lorem, make_image_only_pdf, make_pdf  # noqa: E402

# a kind; the outcomes allowed (kinds, None: indexed); or None: must be indexed
Expected = str | frozenset[str | None] | None
BROKEN: frozenset[str | None] = frozenset({"corrupt", "no-text"})  # unreadable, or read without text
MAYBE_READ = BROKEN | {None}  # a damaged file that readers may repair


def raw_pdf(objects: list[bytes], pages_root: int = 2, catalog_extra: bytes = b"") -> bytes:
    """A PDF of `objects` (object i+1 is objects[i]) behind a catalog (object 1, which the
    caller leaves as b"" to have it written here) and a correct xref table."""
    objects = list(objects)
    if not objects[0]:
        objects[0] = b"<< /Type /Catalog /Pages %d 0 R %s>>" % (pages_root, catalog_extra)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, filters: int = 0, compressed: bytes | None = None) -> bytes:
    """A stream object holding `data`, Flate-compressed `filters` times (0: plain); or holding
    `compressed`, already compressed once (`flate_repeat`) and `filters` - 1 times more."""
    if compressed is not None:
        data, filters = compressed, filters - 1
    for _ in range(filters):
        data = zlib.compress(data, 9)
    if compressed is not None:
        filters += 1
    if not filters:
        return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"
    names = b" ".join([b"/FlateDecode"] * filters)
    return b"<< /Length %d /Filter [%s] >>\nstream\n" % (len(data), names) + data + b"\nendstream"


def flate_repeat(chunk: bytes, times: int) -> bytes:
    """zlib data of `chunk` * `times`, made without building it: a full flush resets the
    compressor, so each repeat compresses to the same bytes (a bomb in milliseconds)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(times):
        adler = zlib.adler32(chunk, adler)
    return b"\x78\xda" + block * times + compressor.flush(zlib.Z_FINISH) + adler.to_bytes(4, "big")


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def text_ops(text: str) -> bytes:
    return b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")


def shared_pages(n: int, content: bytes, filters: int = 0) -> bytes:
    """`n` pages that all draw one content stream: thousands of pages in a few hundred KB."""
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(n))
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
            b"/Resources << /Font << /F1 4 0 R >> >> >>")
    pages = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)
    return raw_pdf([b"", pages, stream(content, filters), FONT] + [page] * n)


def one_page(content: bytes, page_extra: bytes = b"", content_stream: bytes | None = None) -> bytes:
    return raw_pdf([
        b"",
        b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        content_stream or stream(content),
        FONT,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
        b"/Resources << /Font << /F1 4 0 R >> >> %s>>" % page_extra,
    ])


def good_bytes(folder: Path, words: str, n_pages: int = 2) -> bytes:
    """A valid fpdf2 PDF with text, as bytes (made in `folder`, then removed)."""
    path = make_pdf(folder / ".tmp-good.pdf", [f"{words} {lorem(words.split()[0], 6)}"] * n_pages)
    data = path.read_bytes()
    path.unlink()
    return data


def make_hostile_corpus(folder: Path) -> dict[str, Expected]:
    """Write the hostile corpus into `folder`; returns each file's name and what it must come to."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Expected] = {}

    def put(name: str, data: bytes, outcome: Expected) -> None:
        (folder / name).write_bytes(data)
        expected[name] = outcome

    rng = random.Random(14)
    good = good_bytes(folder, "hostile corpus baseline text about glaciers", 3)

    # not PDFs at all
    put("zero-bytes.pdf", b"", "empty")
    heads = [b"plain text named .pdf\n", b"\x89PNG\r\n\x1a\n", b"PK\x03\x04", b"<html><body>",
             b"\x7fELF\x02\x01\x01", b"%!PS-Adobe-3.0\n", b"\xef\xbb\xbf%PDF-lookalike", b"%PD",
             b"\x00" * 2048 + b"%PDF-1.7\n"]
    for i, head in enumerate(heads):
        kind = "corrupt" if b"%PDF-" in head[:1024] else "not-a-pdf"  # readers look in the first KiB
        put(f"not-a-pdf-{i}.pdf", head + rng.randbytes(200), kind)
    # a header, then noise
    for seed in range(40):
        noise = random.Random(seed).randbytes(64 + seed * 97)
        put(f"random-after-header-{seed:02}.pdf", b"%PDF-1.7\n" + noise, "corrupt")
    put("header-only.pdf", b"%PDF-1.4", "corrupt")
    # cut short at 5% .. 95% of a valid file: repaired, or not
    for i in range(30):
        cut = int(len(good) * (0.03 + 0.032 * i))
        put(f"truncated-{i:02}.pdf", good[:cut], MAYBE_READ)
    # bytes flipped at random places: readers repair some, not others
    for seed in range(50):
        data = bytearray(good)
        r = random.Random(100 + seed)
        for _ in range(1 + seed):
            data[r.randrange(20, len(data))] = r.randrange(256)
        put(f"bit-flips-{seed:02}.pdf", bytes(data), MAYBE_READ)
    # a broken cross-reference table: readers rebuild it by scanning, so the text is still read;
    # offsets that point elsewhere are not always caught
    xref = good.rindex(b"startxref")
    for i, tail in enumerate([b"startxref\n999999999\n%%EOF\n", b"startxref\n-5\n%%EOF\n",
                              b"startxref\n0\n%%EOF\n", b"startxref\nabc\n%%EOF\n", b"%%EOF\n", b""]):
        put(f"broken-xref-{i}.pdf", good[:xref] + tail, None)
    table = good.index(b"\nxref\n") + 1
    for seed in range(6):
        mangled = bytearray(good)
        r = random.Random(200 + seed)
        for _ in range(12):
            pos = r.randrange(table + 10, xref)
            if chr(mangled[pos]).isdigit():
                mangled[pos] = ord(str(r.randrange(10)))
        put(f"wrong-xref-offsets-{seed}.pdf", bytes(mangled), MAYBE_READ)
    # encrypted with a user password (the empty password does not open them)
    for seed in range(10):
        path = make_pdf(folder / f"encrypted-{seed}.pdf", [f"secret {seed} " + lorem("vault", 3)],
                        password=f"pw-{seed}")
        expected[path.name] = "encrypted"
    # no pages, or lying about them
    put("zero-pages.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [] /Count 0 >>"]), "no-text")
    # pdfium believes /Count: the page cap refuses the file before reading any page
    put("count-lies.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [] /Count 1000000 >>"]),
        BROKEN | {"too-many-pages"})
    put("no-pages-tree.pdf", raw_pdf([b"", b"null"]), BROKEN)
    put("catalog-not-dict.pdf", raw_pdf([b"[1 2 3]"]), BROKEN)
    # too many pages: checked before any page is read
    put("pages-5000.pdf", shared_pages(5000, text_ops("the same page again")), "too-many-pages")
    put("pages-2001-blank.pdf", shared_pages(2001, b""), "too-many-pages")
    # cycles in the page tree
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>"
    content = stream(text_ops("cycle"))
    put("kids-self-loop.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]), BROKEN)
    put("kids-two-loop.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [3 0 R] /Count 2 >>",
                                      b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"]), BROKEN)
    put("kids-repeat-page.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [4 0 R 4 0 R 4 0 R] /Count 3 >>",
                                         content, page.replace(b"3 0 R", b"3 0 R")]), MAYBE_READ)
    put("parent-loop.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [4 0 R] /Count 1 /Parent 2 0 R >>", content,
                                    b"<< /Type /Page /Parent 4 0 R /Contents 3 0 R >>"]), MAYBE_READ)
    put("reference-loop.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids 3 0 R /Count 1 >>", b"4 0 R", b"3 0 R"]),
        BROKEN)
    put("length-loop.pdf", raw_pdf([b"", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                                    b"<< /Length 3 0 R >>\nstream\nBT ET\nendstream", page]), MAYBE_READ)
    # deep nesting (parsers that recurse run out of stack)
    for depth in (1_000, 50_000):
        put(f"nested-arrays-{depth}.pdf", one_page(text_ops("deep"), page_extra=b"/Deep " + b"[" * depth
                                                   + b"]" * depth + b" "), MAYBE_READ)
        put(f"nested-dicts-{depth}.pdf", one_page(text_ops("deep"), page_extra=b"/Deep " + b"<</A " * depth
                                                  + b">>" * depth + b" "), MAYBE_READ)
    # Flate bombs: a few KB that expand to hundreds of MB of text operators
    chunk = (text_ops("A" * 4000) + b"\n") * 256  # about 1 MB of text operators
    for mb, filters in ((256, 2), (1024, 3)):
        bomb = stream(b"", filters, compressed=flate_repeat(chunk, mb))
        put(f"flate-bomb-{mb}mb.pdf", one_page(b"", content_stream=bomb),
            frozenset({"too-much-text", "out-of-memory", "crashed", "timeout"}))
    drawing = b"0 0 m 1 1 l S q Q " * 60_000  # about 1 MB of path operators, no text
    paths_bomb = stream(b"", 2, compressed=flate_repeat(drawing, 256))
    put("flate-bomb-paths-256mb.pdf", one_page(b"", content_stream=paths_bomb),
        frozenset({"no-text", "out-of-memory", "crashed", "timeout"}))
    # many pages that share one page of 20 000 characters: the character cap stops them early
    lines = b"\n".join(b"(%d %s) '" % (i, b"B" * 140) for i in range(150))
    page_text = b"BT /F1 4 Tf 5 TL 10 780 Td " + lines + b" ET"
    put("text-bomb-pages.pdf", shared_pages(1000, page_text, filters=1), "too-much-text")
    # content streams of noise: operators that make no sense
    for seed in range(12):
        noise = random.Random(300 + seed).randbytes(2000)
        put(f"content-noise-{seed:02}.pdf", one_page(b"", content_stream=stream(noise, seed % 2)), MAYBE_READ)
    # image-only (a scan without OCR)
    for seed in range(4):
        path = make_image_only_pdf(folder / f"image-only-{seed}.pdf", n_pages=1 + seed)
        expected[path.name] = "no-text"
    put("blank-page.pdf", one_page(b"BT ET"), "no-text")
    # valid PDFs under hostile names: indexed like any other
    names = ["with  spaces .pdf", "ünïcødé 日本語 ☃.pdf", "-rf --help.pdf", "--.pdf", "..pdf", "a..b..pdf",
             "...pdf", "$(reboot) `id`.pdf", "; rm -rf ~ ;.pdf", "quote'\"s.pdf", "tab\there.pdf",
             "new\nline.pdf", "%s%n%x.pdf", "back\\slash.pdf", "* ? [ ].pdf", "CON.pdf",
             ".hidden-looking.pdf", "x" * 251 + ".pdf", "é" * 125 + ".pdf", "UPPER.PDF"]
    for i, name in enumerate(names):
        assert len(name.encode()) <= 255, name
        put(name, good_bytes(folder, f"hostile name number {i} about {lorem('quartz', 1)}"), None)
    return expected


def main() -> None:
    """Write the corpus into the folder named on the command line; print the expectations."""
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile_pdfs.py OUT_DIR")
    expected = make_hostile_corpus(Path(sys.argv[1]))
    print(json.dumps({k: sorted(map(str, v)) if isinstance(v, frozenset) else v for k, v in expected.items()},
                     indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
