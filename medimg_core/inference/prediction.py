"""One image's result, as every part of the product reads it: the verdict (a label, or none), the closest class,
the calibrated probabilities, the rejection score and what decided (predict.Classifier makes it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class Prediction:
    """One image's result: the verdict, calibrated probabilities and the rejection score.

    label is the class, or None when the image is not recognised (in_distribution is then False, for every task);
    closest always holds the class the image points to (the most likely one; for a screening task the side of the
    operating threshold its probability is on); confidence is the probability of the label, else of the closest.
    decided_by says what decided ("pixels", "header" or "both": see verdict.py), reason why the image is not
    recognised (None when labelled), basis what decided, in one sentence. probabilities are over the task's classes
    (given that the image is of the task's kind); ood_score is the rejection rule's score (above 1: unfamiliar);
    other_probability the model's probability that it is of another kind (None for a model without a rejection
    output); threshold the operating threshold on a screening task's positive class (None for other tasks).
    """

    label: str | None
    confidence: float
    probabilities: dict[str, float]
    in_distribution: bool
    ood_score: float
    other_probability: float | None = None
    closest: str = ""
    decided_by: str = "pixels"
    reason: str | None = None
    basis: str = ""
    threshold: float | None = None

    def __post_init__(self) -> None:
        """Keep the schema's promise: no label without recognition, and a closest class always."""
        self.closest = self.closest or self.label or ""
        if not self.in_distribution or self.label is None:
            self.label, self.in_distribution = None, False
            self.reason = self.reason or "It is unlike the images the model was trained on."

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Prediction":
        """A Prediction from to_dict's fields (other keys, such as a predict row's file and dicom, are ignored)."""
        nullable = ("label", "other_probability", "reason", "threshold")
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d and (d[f.name] is not None
                                                                                 or f.name in nullable)})
