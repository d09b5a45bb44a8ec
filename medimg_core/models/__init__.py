"""Networks and their files: the architectures built by name (compact CNN, narrow ResNet-18, ensembles),
and checkpoints (weights and task definition, loadable with weights_only) with their model cards.

Layer 3: imports `medimg_core.tasks`, `io`, `data` and this package.
"""
