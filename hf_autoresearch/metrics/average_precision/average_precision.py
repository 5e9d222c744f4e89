"""Ranking quality of one positive class (fraud, abuse, spam): average precision and what goes with it.

Needs the classifier's scores: `scores` holds each row's class probabilities (the frozen predictor returns them),
`label_names` the classes in id order, and the option `positive_label` names the positive class.

- average_precision: area under the precision-recall curve of the positive class (PR-AUC, sklearn's AP).
  A perfect ranking scores 1.0; a constant score scores the positive rate.
- roc_auc: area under the ROC curve.
- best_f1: F1 at the threshold that maximises it; best_threshold is that threshold.
- precision_at_90_recall: the best precision among thresholds whose recall is at least 0.9.
- positive_rate: the share of positive rows (the AP of a model that knows nothing).
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


class AveragePrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions, references: class ids; scores: per-row class probabilities",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, scores=None, label_names=None, positive_label=None):
        if scores is None or label_names is None or positive_label is None:
            raise ValueError("average_precision needs scores, label_names and the option positive_label")
        if positive_label not in label_names:
            raise ValueError(f"positive_label {positive_label!r} is not one of the labels {label_names}")
        positive = label_names.index(positive_label)
        truth = np.asarray(references) == positive
        score = np.asarray(scores, dtype=float)[:, positive]
        precision, recall, thresholds = precision_recall_curve(truth, score)
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
        )
        best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
        return {
            "average_precision": float(average_precision_score(truth, score)),
            "roc_auc": float(roc_auc_score(truth, score)) if 0 < truth.sum() < len(truth) else float("nan"),
            "best_f1": float(f1[best]),
            "best_threshold": float(thresholds[best]) if len(thresholds) else float("nan"),
            "precision_at_90_recall": float(precision[recall >= 0.9].max()),
            "positive_rate": float(truth.mean()),
            "accuracy": float((np.asarray(predictions) == np.asarray(references)).mean()),
        }
