"""flatland.infer: which noise or learning rule made this drift, from responses alone.

* recordings cut from runs that logged the ``responses`` metric:
  :func:`load_log`, :class:`RecordingSpec`, :func:`make_recording`;
* drift signatures with Δt = 0 controls: :func:`signature`, ``FEATURES``;
* labelled data from a sweep, matched on the easy cues: :class:`Plan`,
  :func:`build_dataset`, :func:`match`, :func:`mechanism_of`;
* the classifier (a random forest stored as JSON, no pickles): :func:`fit`, :func:`load_model`,
  :class:`MechanismModel`, :func:`single_feature_rule`;
* its evaluation and report: :func:`evaluate`, :func:`write_report`;
* training end to end: :func:`train`; one recording: :func:`infer_file`.
"""
from .classifier import MechanismModel, fit, single_feature_rule
from .classifier import load as load_model
from .dataset import Plan, match, mechanism_of
from .dataset import build as build_dataset
from .evaluate import Evaluation, evaluate
from .features import FEATURES, Signature, signature
from .recording import RecordingSpec, ResponseLog, load_log, make_recording
from .report import write_report
from .train import DEFAULT_MODEL, infer_file, train

__all__ = [
    "MechanismModel", "fit", "single_feature_rule", "load_model", "Plan", "match", "mechanism_of", "build_dataset",
    "Evaluation", "evaluate", "FEATURES", "Signature", "signature", "RecordingSpec", "ResponseLog", "load_log",
    "make_recording", "write_report", "DEFAULT_MODEL", "infer_file", "train",
]
