"""Making a model: the training loop (TrainConfig, fit, progressive resizing, resume, distillation),
`train` with its model card, calibration and recalibration, cross-validation by dataset and over a task's
own images, fold ensembles, the hyperparameter search, the scikit-learn baseline, and run folders.

Layer 5: imports every layer below it (`tasks`, `io`, `data`, `models`, `inference`) and this package.
"""
