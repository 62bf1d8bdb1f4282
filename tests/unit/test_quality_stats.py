"""Table 1 statistics on fixed English and Chinese texts against hand-counted values."""

from __future__ import annotations

from typing import Any

import pytest

from sailvl.quality.stats import caption_counts, compute_stats, dataset_stats, format_rows
from sailvl.quality.tagging import detect_lang, jieba_coarse, penn_coarse

EN1 = "A red car is parked near the old building. Two dogs run quickly across the green grass."
EN2 = "The small boy holds a blue kite, and the boy smiles."
ZH1 = "一只白色的小猫坐在红色的沙发上，小猫看着窗外。"
ZH2 = "两个孩子在公园里快乐地踢足球。"


def test_english_caption_counts_by_hand() -> None:
    # words: a red car is parked near the old building two dogs run quickly across the
    # green grass (17); 16 distinct bigrams, 15 trigrams; nouns car building dogs grass;
    # verbs is parked run; adjectives red old green.
    c = caption_counts(EN1, "en")
    assert (c["length"], c["uniq_2gram"], c["uniq_3gram"]) == (17, 16, 15)
    assert (c["uniq_noun"], c["uniq_verb"], c["uniq_adj"]) == (4, 3, 3)
    # the small boy holds a blue kite and the boy smiles (11 words, punctuation dropped);
    # "boy" twice counts once; the Pattern tagger reads "smiles" as a plural noun.
    c = caption_counts(EN2, "en")
    assert (c["length"], c["uniq_2gram"], c["uniq_3gram"]) == (11, 10, 9)
    assert (c["uniq_noun"], c["uniq_verb"], c["uniq_adj"]) == (3, 1, 2)


def test_repeated_ngrams_count_once() -> None:
    # the dog sees the dog the dog: 6 bigrams, "the dog" three times -> {the dog,
    # dog sees, sees the, dog the} = 4; the 5 trigrams are all different.
    c = caption_counts("The dog sees the dog, the dog.", "en")
    assert c["length"] == 7 and c["uniq_2gram"] == 4 and c["uniq_3gram"] == 5
    assert c["uniq_noun"] == 1  # dog


def test_english_table_row_is_distinct_over_draw_per_sample() -> None:
    # Table 1: distinct items over the whole draw / number of samples. EN1 has 16
    # bigrams, EN2 10, none shared -> 26 / 2; trigrams 15 + 9 -> 24 / 2; nouns
    # {car building dogs grass} + {boy kite smiles} -> 7 / 2; verbs {is parked run} +
    # {holds} -> 4 / 2; adjectives {red old green} + {small blue} -> 5 / 2.
    s = compute_stats([EN1, EN2, "   "], "en")
    assert s.samples == 2
    assert s.avg_length == pytest.approx((17 + 11) / 2)
    assert (s.uniq_2gram, s.uniq_3gram) == (13.0, 12.0)
    assert (s.uniq_noun, s.uniq_verb, s.uniq_adj) == (3.5, 2.0, 2.5)
    assert s.avg_chars == pytest.approx((len(EN1) + len(EN2)) / 2)
    assert (s.distinct_2gram, s.distinct_noun) == (26, 7)
    # Shared items count once over the draw: "the dog" bigram and "dog" noun repeat.
    s = compute_stats(["The dog runs.", "The dog sleeps."], "en")
    # bigrams {the dog, dog runs, dog sleeps} = 3 over 2 samples; nouns {dog} = 1.
    assert (s.uniq_2gram, s.uniq_noun) == (1.5, 0.5)
    # The per-caption variant (clearly named) still counts within each caption: 2 each.
    assert (s.per_caption_2gram, s.per_caption_noun) == (2.0, 1.0)


def test_duplicated_dataset_halves_the_stats() -> None:
    # Twice the samples, same distinct items: every unique-per-sample figure halves,
    # the mean length does not.
    for texts, lang in (([EN1, EN2], "en"), ([ZH1, ZH2], "zh")):
        one, two = compute_stats(texts, lang), compute_stats(texts * 2, lang)
        assert two.samples == 2 * one.samples and two.avg_length == one.avg_length
        for f in ("uniq_2gram", "uniq_3gram", "uniq_noun", "uniq_verb", "uniq_adj"):
            assert getattr(two, f) == pytest.approx(getattr(one, f) / 2), f
        assert two.per_caption_2gram == one.per_caption_2gram


def test_chinese_counts_by_hand() -> None:
    # jieba: 一只 白色 的 小猫 坐在 红色 的 沙发 上 ， 小猫 看着 窗外 。 -> 12 words;
    # 11 distinct bigrams, 10 trigrams; nouns 白色 小猫 红色 沙发(nz); verbs 坐在 看着.
    c = caption_counts(ZH1, "zh")
    assert (c["length"], c["uniq_2gram"], c["uniq_3gram"]) == (12, 11, 10)
    assert (c["uniq_noun"], c["uniq_verb"], c["uniq_adj"]) == (4, 2, 0)
    # 两个 孩子 在 公园 里 快乐 地 踢足球 -> 8 words; nouns 孩子 公园 踢足球; adj 快乐.
    c = caption_counts(ZH2, "zh")
    assert (c["length"], c["uniq_2gram"], c["uniq_3gram"]) == (8, 7, 6)
    assert (c["uniq_noun"], c["uniq_verb"], c["uniq_adj"]) == (3, 0, 1)
    s = compute_stats([ZH1, ZH2], "zh")
    # over the draw: bigrams 11 + 7 (none shared) / 2; nouns 4 + 3 / 2; adjectives 1 / 2.
    assert (s.avg_length, s.uniq_2gram, s.uniq_noun, s.uniq_adj) == (10.0, 9.0, 3.5, 0.5)
    # 小猫 in both captions counts once over the draw: nouns {白色 小猫 红色 沙发} = 4.
    s = compute_stats([ZH1, "小猫看着窗外。"], "zh")
    assert s.uniq_noun == 2.0 and s.per_caption_noun == pytest.approx((4 + 1) / 2)


@pytest.mark.parametrize(
    ("tag", "coarse"),
    [
        ("NN", "NOUN"),
        ("NNPS", "NOUN"),
        ("VBD", "VERB"),
        ("JJS", "ADJ"),
        ("MD", "OTHER"),
        ("RB", "OTHER"),
    ],
)
def test_penn_classes(tag: str, coarse: str) -> None:
    assert penn_coarse(tag) == coarse


@pytest.mark.parametrize(
    ("flag", "coarse"),
    [("n", "NOUN"), ("nr", "NOUN"), ("vn", "VERB"), ("ad", "ADJ"), ("x", "PUNCT"), ("uj", "OTHER")],
)
def test_jieba_classes(flag: str, coarse: str) -> None:
    assert jieba_coarse(flag) == coarse


def test_detect_lang() -> None:
    assert detect_lang(ZH1) == "zh" and detect_lang(EN1) == "en" and detect_lang("123") == "en"


def test_dataset_stats_on_a_written_dataset(tmp_path: Any, capsys: Any) -> None:
    from sailvl.data.dataset import DatasetWriter, WriterConfig
    from sailvl.quality.stats import stats_main

    uri = f"file://{tmp_path}/ds"
    with DatasetWriter(uri, WriterConfig(max_samples_per_shard=2)) as w:
        for i, (cap, lang) in enumerate(
            [(EN1, "en"), (EN2, ""), (ZH1, "zh"), (ZH2, ""), ("", "en")]
        ):
            w.write({"id": f"x{i}", "images": [b"x"], "caption": cap, "lang": lang})
    rows = dataset_stats(uri, sample=100)
    assert set(rows) == {"en", "zh"}
    assert rows["en"].samples == 2 and rows["en"].avg_length == 14.0
    assert rows["zh"].samples == 2 and rows["zh"].uniq_3gram == 8.0
    assert stats_main(uri, 100, "auto") == 0
    out = capsys.readouterr().out
    assert "Unique 2-gram" in out and "14.00" in out
    assert "zh" in format_rows(rows, "ds")
    with pytest.raises(ValueError, match="lang"):
        dataset_stats(uri, lang="fr")


def test_english_tokens_split_as_nltk_does() -> None:
    # NLTK's Treebank rules: "man's" -> man 's, "isn't" -> is n't, so the words are
    # the man 's dog is n't small (7), never the stray letters "s", "n", "t".
    c = caption_counts("The man's dog isn't small.", "en")
    assert c["length"] == 7 and c["uniq_2gram"] == 6
    from nltk.tokenize import NLTKWordTokenizer

    from sailvl.quality.tagging import tokenize_en

    # Sentences are split first (as nltk.word_tokenize does), so "off!" and "wait." end
    # in separate "!" and "." tokens while "U.S.A." stays one token.
    s1, s2 = 'A "dark-green" sign (24/7) -- U.S.A. logo, $5.99 & 50% off!', "Two cars wait."
    want = NLTKWordTokenizer().tokenize(s1) + NLTKWordTokenizer().tokenize(s2)
    assert tokenize_en(f"{s1} {s2}") == want
