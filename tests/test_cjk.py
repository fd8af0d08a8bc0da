"""Chinese (and Japanese, Korean) PDFs end to end: real PDFs made with a CJK font, extracted,
chunked, indexed with per-script BM25 words and the real MiniLM, searched in Chinese; EM/F1 as
Chinese is scored; the refusal and the prompt in the question's language."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import bm25s
import pypdf
import pytest
from pdfs import CJK_FONT, LATIN_FONT, make_cjk_pdf, make_pdf, strip_unicode_maps

from eval.answer_metrics import exact_match, token_f1
from indexes import IndexStore
from indexes.manifest import Manifest
from indexes.words import CJK, ENGLISH, MULTILINGUAL, tokenize
from rag import ocr
from rag.answer import SYSTEM_PROMPT, build_messages
from rag.chunking import Chunker
from rag.documents import DocumentError, extract_pages
from rag.embedding import resolve_model
from rag.ingest import ingest
from rag.language import declared_languages, language_of, model_reads, not_found, sources_heading
from rag.retrieval import Retriever

needs_fonts = pytest.mark.skipif(
    not (CJK_FONT.is_file() and LATIN_FONT.is_file()),
    reason="CJK PDFs need fonts-droid-fallback and fonts-dejavu-core (.ci/run installs them)",
)

# three documents on three topics, a fact on a known page of each; sentences long enough that
# fpdf2 wraps them in the middle
GREAT_WALL = [
    "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关，全长超过两万公里。",
    "明朝修建的长城大部分用砖石砌成，八达岭长城是游客最多的一段，每年接待游客约一千万人次。",
]
PANDA = [
    "大熊猫主要生活在四川、陕西和甘肃的山区竹林中，是中国特有的珍稀动物。",
    "一只成年大熊猫每天要吃十二到三十八公斤竹子，它们一天中有一半以上的时间在进食。",
]
TEA = [
    "中国是茶的故乡，饮茶的历史可以追溯到四千多年前。",
    "龙井茶产于浙江杭州西湖一带，属于绿茶，以色绿、香郁、味甘、形美著称。"
    "Longjing tea is also called Dragon Well.",
]


@pytest.fixture(scope="module")
def chinese_index(tmp_path_factory, embedder):
    from rag.settings import Settings

    root = tmp_path_factory.mktemp("cjk")
    folder = root / "pdfs"
    folder.mkdir()
    for name, pages in (("great_wall.pdf", GREAT_WALL), ("panda.pdf", PANDA), ("tea.pdf", TEA)):
        make_cjk_pdf(folder / name, pages)
    settings = Settings(index=root / "index", chunk_size=24, chunk_overlap=4)  # a page is 2-3 chunks
    report = ingest([folder], settings, progress=False, embedder=embedder)
    assert not report.failed, report.failed
    return settings, folder


@needs_fonts
def test_chinese_text_comes_out_as_written(tmp_path) -> None:
    text = PANDA[1] * 3  # wraps over several lines
    pages = extract_pages(make_cjk_pdf(tmp_path / "p.pdf", [text]))
    # lines broken between two Chinese characters are joined without a space; full-width
    # punctuation is kept
    assert pages[0].strip() == text
    assert "，" in pages[0] and "。" in pages[0]


@needs_fonts
def test_fonts_without_a_unicode_map_are_reported_not_indexed(tmp_path) -> None:
    good = make_cjk_pdf(tmp_path / "good.pdf", GREAT_WALL)
    garbled = strip_unicode_maps(good, tmp_path / "garbled.pdf")
    with pytest.raises(DocumentError) as raised:
        extract_pages(garbled)
    assert raised.value.kind == "unreadable-text" and "OCR" in str(raised.value)
    # one readable page and one not: the readable one is kept, the other left out
    writer = pypdf.PdfWriter()
    writer.append(str(make_pdf(tmp_path / "english.pdf", ["Readable English text on page one."])))
    writer.append(str(garbled), pages=[1])
    writer.write(str(tmp_path / "mixed.pdf"))
    pages = extract_pages(tmp_path / "mixed.pdf")
    assert pages[0].startswith("Readable English text") and pages[1] == ""


def test_line_joins_know_every_cjk_character_the_index_knows() -> None:
    """rag.documents writes its CJK ranges out (the parsing worker must not import indexes):
    they must stay a superset of indexes.words.CJK."""
    from rag.documents import _CJK

    ranges = [(ord(CJK[i]), ord(CJK[i + 2])) for i in range(0, len(CJK), 3)]  # "a-b" triples
    assert ranges
    join = re.compile(f"[{_CJK}]")
    assert all(join.match(chr(code)) for low, high in ranges for code in (low, (low + high) // 2, high))


def test_bm25_words_per_script() -> None:
    english = ["The revenues grew 8 percent in 2021, as forecast."]
    # English text is tokenised exactly as before this scheme existed
    assert tokenize(english) == bm25s.tokenize(english, stopwords="en", stemmer=_stemmer(), return_ids=False)
    chinese = tokenize(["北京大学的研究人员发表了关于气候变化的论文"])[0]
    assert {"北京", "大学", "北京大学", "气候", "变化", "论文"} <= set(chinese)  # jieba, search mode
    assert "的" not in chinese  # function words dropped
    japanese = tokenize(["東京大学の研究者"])[0]
    assert {"東京", "京大", "大学", "研究", "究者"} <= set(japanese)  # bigrams: jieba is for Chinese
    korean = tokenize(["서울대학교 연구"])[0]
    assert {"서울", "대학", "학교", "연구"} <= set(korean)
    mixed = tokenize(["龙井茶 is called Dragon Well tea"])[0]
    assert "龙井茶" in mixed and {"dragon", "well", "tea"} <= set(mixed)
    # the scheme of an index built before: a Chinese run is one "word"
    assert tokenize(["长城很长"], ENGLISH) == [["长城很长"]]


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def test_chunks_end_at_sentence_ends(embedder) -> None:
    # no sentence is longer than the last quarter of a window, where a cut looks for one
    sentences = ["长城是中国古代的军事防御工程。", "它东起山海关！", "西至嘉峪关；", "全长超过两万公里？"] * 8
    chunks = Chunker(embedder.tokenizer, chunk_size=64, overlap=4).split("wall.pdf", ["".join(sentences)])
    assert len(chunks) > 2
    assert all(c.text[-1] in "。！？；" for c in chunks[:-1]), [c.text[-6:] for c in chunks]
    english = " ".join(f"Sentence {i} says the revenue was 4.2 billion in 2021." for i in range(20))
    chunks = Chunker(embedder.tokenizer, chunk_size=64, overlap=4).split("en.pdf", [english])
    assert all(c.text.endswith("2021.") for c in chunks[:-1]), [c.text[-12:] for c in chunks]


@needs_fonts
@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_a_chinese_question_finds_the_right_page(chinese_index, mode) -> None:
    settings, _ = chinese_index
    retriever = Retriever(settings.index)
    for question, doc, page in (
        ("一只成年大熊猫每天吃多少公斤竹子？", "panda.pdf", 2),
        ("八达岭长城每年接待多少游客？", "great_wall.pdf", 2),
        ("龙井茶产于哪里？", "tea.pdf", 2),
        ("What is Dragon Well tea?", "tea.pdf", 2),  # an English question, a mixed-language page
    ):
        best = retriever.search(question, k=1, mode=mode)[0]
        assert best.doc == doc and best.page_start <= page <= best.page_end, (question, mode, best)


@needs_fonts
def test_the_index_records_its_bm25_words(chinese_index) -> None:
    settings, _ = chinese_index
    snapshot = IndexStore(settings.index).open()
    assert snapshot.manifest.bm25_tokenizer == MULTILINGUAL
    # a manifest written before the scheme existed reads as English words
    old = {k: v for k, v in vars(snapshot.manifest).items() if k != "bm25_tokenizer"}
    assert Manifest(**old).bm25_tokenizer == ENGLISH


def test_chinese_answers_are_scored_by_character() -> None:
    assert exact_match("北京大学。", "北京 大学") == 1.0  # punctuation and spaces do not count
    assert token_f1("在北京大学", "北京大学") == pytest.approx(2 * 0.8 * 1.0 / 1.8)
    assert token_f1("上海", "北京") == 0.0
    assert exact_match("The Cat", "cat") == 1.0  # English as SQuAD scores it


def test_the_answer_speaks_the_question_language() -> None:
    assert [
        language_of(q) for q in ("长城有多长？", "長城の長さは？", "만리장성의 길이는?", "How long?")
    ] == [
        "zh",
        "ja",
        "ko",
        "en",
    ]
    assert not_found("长城有多长？") == "文档中没有这个问题的答案。"
    assert sources_heading("长城有多长？") == "来源：" and sources_heading("How long?") == "Sources:"
    system = build_messages("长城有多长？", [])[0]["content"]
    assert system.startswith(SYSTEM_PROMPT) and "Chinese" in system
    assert build_messages("How long is the wall?", [])[0]["content"] == SYSTEM_PROMPT  # as measured


@needs_fonts
def test_a_chinese_answer_with_nothing_supported_is_refused_in_chinese(chinese_index, embedder) -> None:
    from rag.answer import Answerer

    class Inventing:
        """A fake generator (plumbing): it states a figure no source holds."""

        name = "inventing"

        def stream(self, *args, **kwargs):
            yield "火星上有水，含量为百分之四十二 [1]。"

    settings, _ = chinese_index
    answerer = Answerer(Retriever(settings.index, embedder), Inventing(), unsupported="drop")
    answer = answerer.answer("火星上有多少水？")
    assert not answer.found and answer.text == "文档中没有这个问题的答案。"


@needs_fonts
def test_hybrid_search_does_not_trust_a_model_with_a_script_its_card_does_not_declare(
    chinese_index, embedder
) -> None:
    settings, _ = chinese_index
    assert declared_languages(resolve_model(embedder.name)) == frozenset({"en"})  # MiniLM's card
    retriever = Retriever(settings.index, embedder)
    question = "一只成年大熊猫每天吃多少公斤竹子？"
    hybrid = retriever.search(question, k=5, mode="hybrid")
    assert [r.chunk_id for r in hybrid] == [r.chunk_id for r in retriever.search(question, k=5, mode="bm25")]
    assert all(r.similarity is None for r in hybrid)  # no cosine to judge sources by
    english = retriever.search("What is Dragon Well tea?", k=5, mode="hybrid")
    assert all(r.similarity is not None for r in english)  # English: fused as always
    assert model_reads(frozenset({"multilingual"}), question) and not model_reads(frozenset({"en"}), question)
    assert model_reads(None, question)  # no card: trusted


def image_only_copy(source: Path, target: Path) -> Path:
    """`source`'s pages as pictures only, as a scanner makes them: no text layer at all."""
    import pypdfium2 as pdfium
    from fpdf import FPDF

    document = pdfium.PdfDocument(str(source))
    pdf = FPDF()
    for i in range(len(document)):
        image = document[i].render(scale=2).to_pil()
        pdf.add_page()
        pdf.image(image, x=0, y=0, w=pdf.w, h=pdf.h)
    pdf.output(str(target))
    return target


@needs_fonts
@pytest.mark.skipif(not ocr.available(), reason="OCR needs the [ocr] extra (the test extra has it)")
def test_scanned_and_unmapped_pages_are_read_by_ocr(tmp_path, embedder) -> None:
    source = make_cjk_pdf(tmp_path / "tea.pdf", TEA)
    scanned = image_only_copy(source, tmp_path / "scanned.pdf")
    with pytest.raises(DocumentError) as raised:
        extract_pages(scanned, ocr="never")
    assert raised.value.kind == "no-text" and "[ocr]" in str(raised.value)
    for pdf in (scanned, strip_unicode_maps(source, tmp_path / "unmapped.pdf")):
        pages = extract_pages(pdf, ocr="auto")
        for read, written in zip(pages, TEA, strict=True):
            # OCR reads the characters as written; it may drop spaces between Latin words
            ratio = difflib.SequenceMatcher(None, "".join(read.split()), "".join(written.split())).ratio()
            assert ratio > 0.95, (read, written)
    # a page that has text is not OCR'd under auto (it would cost seconds): the text is pdfium's
    assert extract_pages(source, ocr="auto") == extract_pages(source, ocr="never")
    # through ingest, as `rag ingest --ocr auto` runs it: in the parsing sandbox, then searchable
    from rag.settings import Settings

    settings = Settings(index=tmp_path / "index", chunk_size=24, chunk_overlap=4, ocr="auto")
    report = ingest([scanned], settings, progress=False, embedder=embedder)
    assert not report.failed, report.failed
    best = Retriever(settings.index, embedder).search("龙井茶产于哪里？", k=1, mode="bm25")[0]
    assert best.doc == "scanned.pdf" and best.page_start <= 2 <= best.page_end


def test_a_squad_file_with_chinese_titles_keeps_its_contexts_apart(tmp_path) -> None:
    import json

    from eval.datasets import load_squad

    data = {
        "data": [
            {
                "title": title,
                "paragraphs": [{"context": text, "qas": [{"id": title, "question": "？", "answers": []}]}],
            }
            for title, text in (("长城", GREAT_WALL[0]), ("大熊猫", PANDA[0]))
        ]
    }
    (tmp_path / "zh.json").write_text(json.dumps(data, ensure_ascii=False))
    contexts, questions = load_squad(tmp_path / "zh.json")
    assert sorted(contexts) == ["大熊猫-1", "长城-1"] and len(questions) == 2
