"""Evaluation: VLMEvalKit-compatible benchmarks, scorers, reports and scaling-law fits.

Layers, bottom up: ``scorers`` (pure metric functions, by name), ``tsv`` and ``prompts``
(benchmark rows and the SAIL-VL prompts), ``judge`` (optional OpenAI-compatible
client), ``runner`` (generate, resume, score, write ``results.json``), ``results``
(category averages, Markdown), ``scaling``/``plots``/``report`` (fits across
checkpoints), ``synthetic`` (generated benchmarks). Importing this package imports none
of torch, numpy or matplotlib.
"""
