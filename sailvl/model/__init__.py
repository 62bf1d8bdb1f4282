"""SAIL-VL model construction (transformers' InternVL classes), presets, freeze policy,
tokenizers, checkpoints, the image processor and generation.

Kept free of imports on purpose: `import sailvl.model` must not import torch or
transformers. Import the submodule you need:

- `sailvl.model.presets`: `get_preset(name)`, `ModelPreset.tokens_per_tile` (pure)
- `sailvl.model.build`: `build_model(preset, device=..., dtype=...)`, `build_config`
- `sailvl.model.freeze`: `apply_freeze(model, {"vision", "projector", "llm"})`
- `sailvl.model.loader`: `ModelConfig`, `load_model(config) -> (model, tokenizer)`
- `sailvl.model.checkpoint`: `save_checkpoint(model, tokenizer, uri)`, `save_parts`
- `sailvl.model.convert`, `convert_config`, `convert_internlm2`: original InternVL /
  InternViT layout <-> native names, tensors and configs (pure)
- `sailvl.model.layout`: checkpoint folders in either layout, `convert_folder`, strict
  `load_native` (`sailvl convert`)
- `sailvl.model.export`: DeepSpeed step checkpoint -> model folder (`sailvl export`)
- `sailvl.model.processor`: `ImageProcessor` (PIL images -> pixel_values)
- `sailvl.model.generate`: `generate(model, tokenizer, processor, images, prompts)`
- `sailvl.model.attention`: packed-sequence attention (owned by the packing work)
"""
