"""Inputs and outputs: reading images and pages, writing result files atomically, drawing."""
