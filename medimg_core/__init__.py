"""medimg_core: the library behind the medimg studio (no Streamlit in here).

Typical use::

    from medimg_core import load_classifier, read_image
    clf = load_classifier("modality")
    prediction = clf.predict(read_image("scan.dcm"))
    heatmap = clf.explain(read_image("scan.dcm"), method="Grad-CAM")
"""
from .io.imaging import ImageReadError, read_image, to_model_input
from .tasks import TASKS, TaskSpec, get_task


def __getattr__(name: str):
    """Import the torch-heavy parts lazily, so `read_image` and the registry stay light."""
    if name in ("Classifier", "Prediction", "load_classifier", "model_path"):
        from .inference import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'medimg_core' has no attribute {name!r}")


__all__ = ["TASKS", "TaskSpec", "get_task", "read_image", "to_model_input", "ImageReadError",
           "Classifier", "Prediction", "load_classifier", "model_path"]
