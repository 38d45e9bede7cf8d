"""Evaluation: metrics, benchmark readers and the one evaluation harness behind ``ocrlite eval`` and the scripts."""
