"""Prompts as VLMEvalKit builds them for SAIL-VL (``vlmeval/vlm/sail_vl.py``).

- multiple choice: ``hint`` (if any) + newline + question, then one line per present
  option ``"\\nA. text"``, then "Answer with the option's letter from the given choices
  directly." (Chinese prompts: "请直接回答选项字母。"); a question without options gets
  "Answer the question directly." (Chinese: "请直接回答问题。");
- yes/no: MME appends " Answer the question using a single word or phrase.";
  HallusionBench " Please answer yes or no. Answer the question using a single word or
  phrase."; POPE and other yes/no sets use the bare question;
- short answer: question + "\\nAnswer the question using a single word or phrase.";
  MathVista and MMVet use the bare question; captions and transcriptions (the
  understanding suite) use the question as written.

After generation a single trailing period is removed for ChartQA and OCRVQA, as the
SAIL-VL wrapper does before scoring.
"""

from __future__ import annotations

from typing import Any

from .scorers.base import choices_of, is_missing
from .scorers.prompts_judge import cn_string

SHORT_ANSWER = "Answer the question using a single word or phrase."
MC_SUFFIX_EN = "Answer with the option's letter from the given choices directly."
MC_SUFFIX_CN = "请直接回答选项字母。"
OPEN_SUFFIX_EN = "Answer the question directly."
OPEN_SUFFIX_CN = "请直接回答问题。"
YORN = frozenset({"mme", "pope", "hallusion", "yesno"})
MCQ = frozenset({"mcq", "mcq_circular"})
BARE_VQA = ("mathvista", "mmvet", "mathvision", "mathverse", "dynamath")


def multiple_choice_prompt(record: dict[str, Any]) -> str:
    question = str(record.get("question") or "")
    if not is_missing(record.get("hint")):
        question = f"{record['hint']}\n{question}"
    options = choices_of(record)
    for letter, option in options.items():
        question += f"\n{letter}. {option}"
    cn = cn_string(question)
    if options:
        return question + "\n" + (MC_SUFFIX_CN if cn else MC_SUFFIX_EN)
    return question + "\n" + (OPEN_SUFFIX_CN if cn else OPEN_SUFFIX_EN)


def build_prompt(benchmark: str, scorer: str, record: dict[str, Any]) -> str:
    """The text prompt for one row (images are passed to the model separately)."""
    name = benchmark.lower()
    question = str(record.get("question") or "")
    if scorer in MCQ:
        return multiple_choice_prompt(record)
    if scorer in YORN:
        if "mme" in name or scorer == "mme":
            return f"{question} {SHORT_ANSWER}"
        if "hallusion" in name or scorer == "hallusion":
            return f"{question} Please answer yes or no. {SHORT_ANSWER}"
        return question
    if scorer in ("judge_mmvet", "judge_mathvista", "caption_judge", "transcription") or any(
        b in name for b in BARE_VQA
    ):
        return question
    return f"{question}\n{SHORT_ANSWER}"


def postprocess(benchmark: str, response: str) -> str:
    """SAIL-VL's response clean-up: ChartQA / OCRVQA lose one trailing period."""
    name = benchmark.lower()
    if ("chartqa" in name or "ocrvqa" in name) and response.endswith("."):
        return response[:-1]
    return response
