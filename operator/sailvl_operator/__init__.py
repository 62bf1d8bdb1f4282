"""The sailvl kopf operator: reconciles CaptionJob, TrainStage, EvalSuite, Curriculum.

Layers: ``builders`` and ``status`` are pure (spec in, dicts out, tested with golden
manifests); ``k8s`` is the only module that talks to the API server; ``handlers`` are
thin kopf handlers that read, call a builder or decider, do the I/O, write status once.
Run with ``kopf run --standalone -m sailvl_operator.main``.
"""

__version__ = "0.1.0"
