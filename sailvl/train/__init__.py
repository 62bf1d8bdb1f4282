"""The training stage runner: one SAIL-VL stage on DeepSpeed (`sailvl train --config`).

Layers, bottom up (only `loop`, `engine`, `checkpoint` and `batches` import torch):

- `config`     TrainConfig: the resolved TrainStage spec plus the world size (pure)
- `schedule`   warmup + cosine LR, budget -> steps, per-rank batch (pure)
- `flops`      FLOPs per token and the MFU formula (pure)
- `stream`     the deterministic, rank-sharded sample order and its resume cursor
- `encode`     dataset row -> token ids, labels and image tiles
- `batches`    one optimizer step's samples -> packed micro-batches, equal across ranks
- `engine`     the DeepSpeed config and engine over the trainable parameters
- `checkpoint` step checkpoints in the object store: save, retention, latest, resume
- `progress`   Prometheus metrics and the TrainStage status
- `loop`       the training loop; `preflight` the config checks; `main` the entry point
"""
