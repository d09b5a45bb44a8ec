"""Datasets and everything that shapes them before a model: downloads and their checks, reading a task's
sources into one pool, splits that keep duplicates and patients together (and the atypical and earliest
validation splits), exact and near-duplicate hashing, acquisition traits, training augmentation, the
synthetic foreign pictures, and whether evaluation data overlaps a model's training.

Layer 2: imports `medimg_core.tasks`, `medimg_core.io` and this package.
"""
