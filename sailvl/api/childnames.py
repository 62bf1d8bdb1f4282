"""How long a resource's name may be, given the names of the children it generates.

Every child the operator creates is named after its parent, and Kubernetes caps the
names that end up in labels and DNS at 63 characters (a DNS-1123 label):

- a TrainStage ``<name>`` gets a headless Service ``<name>`` (a DNS-1035 label: a
  lower-case letter first, no dots) and one Indexed Job per attempt ``<name>-<attempt>``
  (attempt 0..maxRestarts); the Job name is the ``job-name`` label of its pods, and the
  Job controller sets each pod's hostname to ``<job>-<index>`` (index 0..nodes-1);
- a CaptionJob or EvalSuite ``<name>`` gets the Indexed Job ``<name>-0`` whose pod
  hostnames are ``<name>-0-<index>`` (index below ``parallelism``);
- a Curriculum ``<name>`` gets one child per step, ``<name>-<step>``, each with the
  children above (steps: ``caption``, every stage, ``<stage>-eval``, ``final-eval``).

A name over the limit is accepted by the API server for the parent and then fails when
the operator creates the child, so the CRDs carry CEL rules built here that refuse it up
front, with a message giving the longest name allowed for this spec. The Python
functions compute the same limits for ``sailvl validate``; both sides read the same
suffix arithmetic. A Curriculum's rule reads ``defaults.nodes`` and
``defaults.maxRestarts``: a stage's ``overrides`` are free-form and invisible to CEL,
so the child TrainStage's own rule catches an override that makes its name too long.
"""

from __future__ import annotations

from typing import Final

MAX_LABEL: Final = 63
#: Headless Service names are DNS-1035 labels (a letter first); TrainStage and
#: Curriculum names must be one (a Curriculum's stage children are TrainStages).
DNS1035_LABEL: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
#: Pod hostnames are DNS-1123 labels: no dots, so Job-owning resources need one too.
DNS1123_LABEL: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Curriculum eval steps run one pod (parallelism 1): Job ``<child>-0``, host ``-0-0``.
EVAL_STEP_SUFFIX: Final = len("-eval") + len("-0-0")
FINAL_EVAL_SUFFIX: Final = len("-final-eval") + len("-0-0")


def digits(n: int) -> int:
    return len(str(max(n, 0)))


def train_suffix(max_restarts: int, nodes: int) -> int:
    """Characters a TrainStage's longest pod hostname adds: ``-<attempt>-<index>``."""
    return 2 + digits(max_restarts) + digits(nodes - 1)


def sharded_suffix(parallelism: int) -> int:
    """Characters a CaptionJob's / EvalSuite's longest hostname adds: ``-0-<index>``."""
    return 3 + digits(parallelism - 1)


def curriculum_suffix(
    stages: list[tuple[str, bool]],
    max_restarts: int,
    nodes: int,
    caption_parallelism: int | None,
    final_eval: bool,
) -> int:
    """The longest suffix any step child adds to a Curriculum's name. ``stages`` holds
    (stage name, has eval) pairs."""
    out = [1 + len(name) + train_suffix(max_restarts, nodes) for name, _ in stages]
    out += [1 + len(name) + EVAL_STEP_SUFFIX for name, ev in stages if ev]
    if caption_parallelism is not None:
        out.append(len("-caption") + sharded_suffix(caption_parallelism))
    if final_eval:
        out.append(FINAL_EVAL_SUFFIX)
    return max(out, default=0)


# -- CEL ------------------------------------------------------------------------------
# Rules are scoped to the root of the object: self.metadata.name is readable there.
# string(n) of a non-negative int has as many characters as its decimal digits.


def _cel_digits(expr: str) -> str:
    return f"size(string({expr}))"


def _cel_train_suffix(restarts: str, nodes: str) -> str:
    return f"(2 + {_cel_digits(restarts)} + {_cel_digits(f'{nodes} - 1')})"


def _cel_sharded_suffix(parallelism: str) -> str:
    return f"(3 + {_cel_digits(f'{parallelism} - 1')})"


def _length_rule(suffix: str, children: str) -> dict[str, str]:
    """The rule, a static message (the fallback) and a messageExpression naming the
    limit. The number is picked from a list of literals: the API server refuses a
    messageExpression that concatenates string(int) (its estimated cost is unbounded)."""
    limit = f"({MAX_LABEL} - {suffix})"
    numbers = "[" + ", ".join(f"'{i}'" for i in range(MAX_LABEL + 1)) + "]"
    tail = f"{children} must fit in {MAX_LABEL} characters"
    return {
        "rule": f"size(self.metadata.name) <= {limit}",
        "message": f"metadata.name is too long: {tail}",
        "messageExpression": f"'metadata.name may be at most ' + {numbers}[{limit} < 0 ? 0 : "
        f"{limit}] + ' characters long for this spec: {tail}'",
    }


def _pattern_rule(pattern: str, why: str) -> dict[str, str]:
    return {"rule": f"self.metadata.name.matches('{pattern}')", "message": why}


_NO_DOTS = (
    "metadata.name must be a DNS-1123 label (lower-case letters, digits and '-', no dots): "
    "it starts the pod hostnames <name>-0-<index>"
)
_DNS1035 = (
    "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting "
    "with a letter, no dots): it names the headless Service <name> of the pod group"
)


def train_rules() -> list[dict[str, str]]:
    suffix = _cel_train_suffix("self.spec.maxRestarts", "self.spec.nodes")
    return [
        _pattern_rule(DNS1035_LABEL, _DNS1035),
        _length_rule(
            suffix,
            "the Job <name>-<attempt> (up to maxRestarts) and its pod "
            "hostnames <name>-<attempt>-<index> (up to nodes - 1)",
        ),
    ]


def sharded_rules() -> list[dict[str, str]]:
    return [
        _pattern_rule(DNS1123_LABEL, _NO_DOTS),
        _length_rule(
            _cel_sharded_suffix("self.spec.parallelism"),
            "the pod hostnames <name>-0-<index> (up to parallelism - 1)",
        ),
    ]


def curriculum_rules(default_restarts: int, default_nodes: int) -> list[dict[str, str]]:
    restarts = f"(has(self.spec.defaults) ? self.spec.defaults.maxRestarts : {default_restarts})"
    nodes = f"(has(self.spec.defaults) ? self.spec.defaults.nodes : {default_nodes})"
    stage = _cel_train_suffix(restarts, nodes)
    parts = [
        f"self.spec.stages.map(s, 1 + size(s.name) + (has(s.eval) ? "
        f"[{stage}, {EVAL_STEP_SUFFIX}].max() : {stage})).max()",
        "(has(self.spec.caption) ? "
        f"{len('-caption')} + {_cel_sharded_suffix('self.spec.caption.parallelism')} : 0)",
        f"(has(self.spec.finalEval) ? {FINAL_EVAL_SUFFIX} : 0)",
    ]
    suffix = "[" + ", ".join(parts) + "].max()"
    return [
        _pattern_rule(
            DNS1035_LABEL,
            "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', "
            "starting with a letter, no dots): its stages become TrainStages <name>-<stage>",
        ),
        _length_rule(
            suffix,
            "every step child <name>-<step> with its Job and pod hostnames "
            "(<name>-<stage>-<attempt>-<index>, <name>-<stage>-eval-0-0, "
            "<name>-caption-0-<index>, <name>-final-eval-0-0)",
        ),
    ]
