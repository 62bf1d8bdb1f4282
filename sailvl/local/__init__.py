"""The embedded default: run a Curriculum on one machine, no cluster.

``sailvl run FILE`` uses the same pure step logic as the operator
(:mod:`sailvl.api.flow`) and the same job configs (:mod:`sailvl.api.jobconfig`); each
child runs as a subprocess (``sailvl caption|train|eval --config``), and reports its
progress through a ``file:`` status sink that this executor polls.
"""
