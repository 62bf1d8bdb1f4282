"""Experiments: trials built from a template, run under a parallelism limit, decided.

- :mod:`.trials` - the pure expansion of an Experiment spec into trials and their child
  specs, and :func:`.trials.decide` (what to start now, the status table, the phase);
- :mod:`.analysis` - each strategy's decision over the trials' results;
- :mod:`.stats` - rank agreement (Kendall tau, Spearman), shared by the analyses;
- :mod:`.checks` - the up-front validation of every trial's children;
- :mod:`.local` - ``sailvl run experiment.yaml``: the trials as local subprocesses.

Everything but :mod:`.local` is pure (no I/O), shared by the operator and ``sailvl run``.
"""
