"""Using a trained model: the Classifier and its Prediction, the rejection rule (Mahalanobis distance and
the 'other' output), the picture check and the header-and-pixels verdict, Grad-CAM explanations, metrics of
a set of predictions, CPU latency, and the archive audit on Ray Data.

Layer 4: imports `medimg_core.tasks`, `io`, `data`, `models` and this package.
"""
