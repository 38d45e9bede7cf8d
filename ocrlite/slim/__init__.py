"""Slimming: structural pruning, int8 quantization, ONNX export and distillation of ocrlite stages.

Each module has one job: ``groups`` names a net's prunable channel groups and reads its widths back,
``sensitivity`` measures how much each group alone hurts the output, ``prune`` picks per-group ratios
under a MACs target and removes channels (Torch-Pruning's dependency graph), ``run_prune`` is
``ocrlite prune``, ``save`` writes a slimmed stage as safetensors + manifest + stage/pipeline configs that load
through ``ocrlite.stages``. ``onnx_export`` is ``ocrlite export`` (ONNX, checked with onnxruntime);
``quantize`` and ``run_quantize`` (``ocrlite quantize``) make post-training int8 ONNX, ``qat`` quantization-aware
fine-tuning (``train.qat``). ``distill`` holds the distillation losses and task wrappers (``train.distill``),
with ``mutual`` (U-DML), ``cml`` (CML) and ``pseudo`` (pseudo-label) modes; ``bench`` tabulates slimmed variants.
"""
