import shutil

import pytest

from hf_autoresearch.metrics import metric_path
from hf_autoresearch.tamper import TamperError, fingerprint, verify


def test_fingerprint_covers_evaluation_and_metric_code_and_catches_changes(tmp_path):
    metric = tmp_path / "classification"
    shutil.copytree(metric_path("classification"), metric)
    expected = fingerprint(metric)
    assert any(p.endswith("evaluation.py") for p in expected)
    assert any(p.endswith("classification.py") for p in expected)
    verify(expected, metric)  # unchanged: no error
    file = metric / "classification.py"
    file.write_text(file.read_text().replace("accuracy_score(references, predictions)", "1.0"))
    with pytest.raises(TamperError, match="classification.py"):
        verify(expected, metric)
    (metric / "extra.py").write_text("x = 1\n")
    with pytest.raises(TamperError, match="extra.py"):
        verify(fingerprint(metric) | {str(metric / "extra.py"): "0"}, metric)
