"""The data path: dataset format, synthetic data, streaming reader, tiling, chat template
and packing. Kept empty on purpose: `import sailvl.data` must not import torch, PIL,
pyarrow or boto3; import the submodule you need."""
