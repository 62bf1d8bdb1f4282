"""The visual-understanding suite (paper Appendix E, Table 9): what each task expects.

The paper checks pretraining checkpoints on detailed captioning and full-text OCR, not
on question answering: a model that has only been through the alignment stages cannot
follow VQA instructions yet, but it can already describe and read. Seven tasks, a
random 500-row subset of each (``sailvl.api.benchmarks.UNDERSTANDING_SUBSET``, drawn
with a seed by :func:`sailvl.eval.tsv.load_benchmark`):

========================  ====  =============  ==========================================
benchmark                 lang  scorer         data
========================  ====  =============  ==========================================
``detailcaps``            en    caption_judge  DetailCaps-4870 (the CAPTURE benchmark):
                                               3 reference captions per image
``detailcaps-cn``         zh    caption_judge  the same images, Chinese references
``idl-wds``               en    transcription  IDL (Industry Documents Library) scans as
                                               WebDataset, page text as ground truth
``docstruct``             en    transcription  structured documents (titles, fields,
                                               tables) with their text
``synthtext``             en    transcription  SynthText: words rendered into natural
                                               scenes
``synthdog-en``           en    transcription  SynthDoG English: text on paper over a
                                               background photo
``synthdog-zh``           zh    transcription  SynthDoG Chinese
========================  ====  =============  ==========================================

The data cannot be downloaded by the suite: convert each set once to a VLMEvalKit TSV,
``<dataRoot>/<benchmark>.tsv``, tab-separated, UTF-8, one header row, cells quoted with
``"`` when they contain a tab, quote or newline (what Python's ``csv`` module and
pandas' ``to_csv(sep="\\t")`` write). Columns:

``index``
    unique row id (required).
``image``
    the image as base64 (PNG or JPEG); a cell of at most 64 characters is instead the
    ``index`` of the row holding the image (VLMEvalKit's convention).
``question``
    the instruction, sent to the model as written (no suffix is added). Captions:
    "Describe this image in detail." / "请详细描述这张图片。"; transcriptions: "Read all
    the text in the image." / "请读出图中的所有文字。" (:data:`QUESTIONS`).
``answer``
    captions: the references as a Python list literal, ``['ref 1', 'ref 2', 'ref 3']``
    (as VLMEvalKit stores DetailCaps; one plain string is one reference); the judge sees
    all of them in one prompt (``sailvl.eval.scorers.judged``). Transcriptions: the full
    text, line breaks included (they are ignored by the scorer, as is all whitespace;
    ``sailvl.eval.scorers.transcription``).
``category`` (optional)
    a sub-source or layout name; scores are also reported per category.

Scores are 0-100: a caption's judge grade (1-10) x 10; a transcription's ``1 - NED`` x
100 (``metrics`` adds the exact-match ``accuracy``). The suite's headline is the plain
mean over its benchmarks (``understanding`` in results.json); the tasks do not enter the
Table 4 categories. ``sailvl.eval.synthetic_understanding`` writes stand-ins of the same
shape for tests and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from sailvl.api.benchmarks import BENCHMARKS, SUITES

CAPTION_EN: Final = "Describe this image in detail."
CAPTION_ZH: Final = "请详细描述这张图片。"
READ_EN: Final = "Read all the text in the image."
READ_ZH: Final = "请读出图中的所有文字。"


@dataclass(frozen=True)
class Task:
    """One benchmark of the suite."""

    name: str
    lang: Literal["en", "zh"]
    kind: Literal["caption", "transcription"]

    @property
    def question(self) -> str:
        """The instruction of this task's rows."""
        return QUESTIONS[(self.kind, self.lang)]

    @property
    def scorer(self) -> str:
        return BENCHMARKS[self.name].scorer


QUESTIONS: Final[dict[tuple[str, str], str]] = {
    ("caption", "en"): CAPTION_EN,
    ("caption", "zh"): CAPTION_ZH,
    ("transcription", "en"): READ_EN,
    ("transcription", "zh"): READ_ZH,
}

CHINESE: Final = frozenset({"detailcaps-cn", "synthdog-zh"})
"""The suite's Chinese tasks; the rest are English."""

TASKS: Final[dict[str, Task]] = {
    name: Task(
        name,
        "zh" if name in CHINESE else "en",
        "caption" if BENCHMARKS[name].scorer == "caption_judge" else "transcription",
    )
    for name in SUITES["understanding"]
}
"""The suite's tasks in run order (``sailvl.api.benchmarks.SUITES["understanding"]``)."""

COLUMNS: Final = ["index", "image", "question", "answer", "category"]
"""The columns the stand-ins write, in this order."""
