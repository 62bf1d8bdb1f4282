"""Caption and SFT data quality: the paper's Table 1 statistics and judge prompts.

- `sailvl.quality.stats`: average length, unique 2-/3-grams, unique nouns, verbs and
  adjectives per sample as Table 1 defines them (distinct items over the draw / samples;
  English: NLTK tokens, Penn tags by TextBlob's offline Pattern tagger; Chinese: jieba),
  over texts or a sample of a dataset; `stats_main` prints Table-1 rows.
- `sailvl.quality.judge`: the Figure 7 caption-score prompt (1-10 against ground-truth
  captions) and the Figure 10 SFT data prompts (difficulty, complexity, image-text
  relevance) against any OpenAI-compatible chat-completions endpoint, with robust score
  parsing (`sailvl.quality.scores`).
- `sailvl.quality.compare`: Table 8's good / same / bad comparison of two caption sets,
  judged in both orders (`sailvl stats compare`).

Nothing heavy is imported here; the taggers load on first use.
"""
