"""Slimming: structural pruning, int8 quantization, ONNX export and distillation of ocrlite stages.

Each module has one job: ``groups`` names a net's prunable channel groups and reads its widths back,
``sensitivity`` measures how much each group alone hurts the output, ``prune`` picks per-group ratios
under a MACs target and removes channels (Torch-Pruning's dependency graph), ``save`` writes a slimmed
stage as safetensors + manifest + stage/pipeline configs that load through ``ocrlite.stages``.
"""
