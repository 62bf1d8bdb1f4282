"""Answer normalisation and string metrics, behaving as VLMEvalKit's ``vqa_eval.py``.

Each function reproduces one VLMEvalKit helper *including its quirks*, because scores are
only comparable with published numbers if every edge case lands the same way:

- punctuation (``process_punctuation``): each listed mark is deleted when the *original*
  text has that mark next to a space, or has a digit-comma-digit anywhere; otherwise it
  becomes a space. Apostrophes and colons are kept. Periods not touching a digit are
  then deleted, but only the first 32 of them: VLMEvalKit passes ``re.UNICODE`` (= 32)
  positionally into the ``count`` slot of ``re.sub``.
- digits and articles: lower-case, split on whitespace, map number words ``none`` and
  ``zero``..``ten`` to digits, drop ``a``/``an``/``the``, restore apostrophes of the
  classic VQA contraction list (``dont`` -> ``don't``).
- ANLS distance: Levenshtein on whitespace-collapsed lower-case strings, divided by the
  longer *raw* length measured after ``str.upper()`` (so ``"ß"`` counts as 2).
- relaxed correctness (ChartQA): numbers (a trailing ``%`` divides by 100) within 5%
  relative of a non-zero target; anything else is a case-insensitive exact match.
"""

from __future__ import annotations

import re

_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<"]
_PUNCT += ["@", "`", ",", "?", "!"]
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_LONE_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")
_PERIOD_LIMIT = 32  # VLMEvalKit's accidental `count=re.UNICODE`

_NUMBER_WORDS = dict(
    zip(
        [
            "none",
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
        ],
        ["0", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        strict=True,
    )
)
_ARTICLES = frozenset({"a", "an", "the"})

# The VQA contraction table as "written=restored" pairs. Entries with capitals (Im, Ive)
# can never match lower-cased words; they are kept so the table stays the reference's.
_CONTRACTION_PAIRS = """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't
couldn'tve=couldn't've couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't
hadnt=hadn't hadnt've=hadn't've hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd
hed've=he'd've he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's Id've=I'd've
I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've
itll=it'll let's=let's maam=ma'am mightnt=mightn't mightnt've=mightn't've
mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've neednt=needn't
notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at
'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's
shouldve=should've shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've
somebody'd=somebodyd somebodyd've=somebody'd've somebody'dve=somebody'd've
somebodyll=somebody'll somebodys=somebody's someoned=someone'd someoned've=someone'd've
someone'dve=someone'd've someonell=someone'll someones=someone's somethingd=something'd
somethingd've=something'd've something'dve=something'd've somethingll=something'll
thats=that's thered=there'd thered've=there'd've there'dve=there'd've therere=there're
theres=there's theyd=they'd theyd've=they'd've they'dve=they'd've theyll=they'll
theyre=they're theyve=they've twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've
weve=we've werent=weren't whatll=what'll whatre=what're whats=what's whatve=what've
whens=when's whered=where'd wheres=where's whereve=where've whod=who'd whod've=who'd've
who'dve=who'd've wholl=who'll whos=who's whove=who've whyll=why'll whyre=why're
whys=why's wont=won't wouldve=would've wouldnt=wouldn't wouldnt've=wouldn't've
wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll yall'd've=y'all'd've
y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've you'dve=you'd've
youll=you'll youre=you're youve=you've
"""
CONTRACTIONS: dict[str, str] = dict(p.split("=", 1) for p in _CONTRACTION_PAIRS.split())


def process_punctuation(text: str) -> str:
    """VLMEvalKit ``process_punctuation`` (see the module docstring for the rules)."""
    comma_between_digits = _COMMA_BETWEEN_DIGITS.search(text) is not None
    out = text
    for mark in _PUNCT:
        glued = (mark + " " in text) or (" " + mark in text) or comma_between_digits
        out = out.replace(mark, "" if glued else " ")
    return _LONE_PERIOD.sub("", out, count=_PERIOD_LIMIT)


def process_digit_article(text: str) -> str:
    """Lower-case, number words to digits, drop articles, restore contractions."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def process_answer(answer: str) -> str:
    """The VQA answer normalisation VLMEvalKit applies before VQA accuracy."""
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute all cost 1).

    Bit-parallel (Myers 1999, in Hyyro's formulation for the global distance): column
    ``j`` of the dynamic programme is kept as two bit vectors of vertical +1 / -1 steps
    over the shorter string, so each character of the longer string costs a handful of
    big-integer operations instead of an inner loop. Full-page transcriptions (thousands
    of characters, the understanding suite) score in milliseconds instead of seconds;
    the result is the textbook distance (a test checks it against the plain programme).
    """
    if len(a) > len(b):
        a, b = b, a
    m = len(a)
    if m == 0:
        return len(b)
    peq: dict[str, int] = {}  # character -> bit mask of its positions in a
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    mask, high = (1 << m) - 1, 1 << (m - 1)
    pv, mv, score = mask, 0, m  # all vertical steps +1: column 0 is 0..m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask  # row 0 grows by one per column: a +1 step enters
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def anls_distance(groundtruth: str, prediction: str) -> float:
    """Normalised Levenshtein *distance* (0 = identical), VLMEvalKit ``anls_compute``."""
    gt = " ".join(groundtruth.strip().lower().split())
    pred = " ".join(prediction.strip().lower().split())
    length = max(len(groundtruth.upper()), len(prediction.upper()))
    return 0.0 if length == 0 else levenshtein(gt, pred) / length


def _to_float(text: str) -> float | None:
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correctness(target: str, prediction: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA relaxed accuracy (pix2struct's definition, as VLMEvalKit calls it).

    A zero target cannot be compared relatively and falls back to string equality.
    """
    prediction, target = str(prediction), str(target)
    pred_f, target_f = _to_float(prediction), _to_float(target)
    if pred_f is not None and target_f:
        return abs(pred_f - target_f) / abs(target_f) <= max_relative_change
    return prediction.lower() == target.lower()
