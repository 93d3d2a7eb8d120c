"""The GPU check's plumbing, exercised on the CPU: per-test logging, verdict, synthetic data, report."""
from __future__ import annotations

import numpy as np

from xpgrad.bench import gpu_check
from nn.data import datasets

SAMPLE_TESTS = '''
import pytest

def test_ok():
    pass

def test_bad():
    assert 1 == 2, "deliberate"

def test_wants_gpu():
    pytest.skip("CuPy or a CUDA GPU is not available")

def test_wants_torch():
    pytest.skip("torch not installed")
'''


def test_run_tests_counts_outcomes_and_cupy_skips(tmp_path):
    f = tmp_path / "test_sample.py"
    f.write_text(SAMPLE_TESTS)
    r = gpu_check.run_tests(str(tmp_path), timeout=120, pytest_args=[str(f)])
    assert r["counts"] == {"passed": 1, "failed": 1, "skipped": 2}
    assert r["skipped_for_want_of_cupy"] == 1
    assert r["failures"][0]["test"].endswith("test_bad") and "deliberate" in r["failures"][0]["why"]
    assert not r["timed_out"] and r["returncode"] == 1


def _result(device="cuda", cuda=True, **tests):
    t = {"counts": {"passed": 3, "failed": 0, "skipped": 0}, "timed_out": False, "seconds": 1.0,
         "skipped_for_want_of_cupy": 0, "cupy_tests": 2, "skip_reasons": {}, "failures": []}
    t.update(tests)
    return {"device": device, "environment": {"cuda_available": cuda}, "tests": t, "training": [],
            "started": "now", "seconds": 2.0, "synthetic_data": True}


def test_verdict_fails_without_gpu_on_failures_and_on_cupy_skips():
    assert gpu_check.verdict(_result()) == []
    assert "CuPy does not see a GPU" in gpu_check.verdict(_result(cuda=False))
    assert gpu_check.verdict(_result(device="cpu", cuda=False)) == []            # the CPU dry run
    assert any("failed" in p for p in gpu_check.verdict(_result(counts={"passed": 1, "failed": 2, "skipped": 0})))
    assert any("want of CuPy" in p for p in gpu_check.verdict(_result(skipped_for_want_of_cupy=4)))
    assert any("did not finish" in p for p in gpu_check.verdict(_result(timed_out=True)))


def test_targets_and_report_name_the_ratios():
    r = _result()
    r["benchmarks"] = {"rows": [], "ratios": {"cnn_b64_cuda_xpgrad_over_torch": 2.5,
                                              "mlp_b512_cuda_xpgrad_over_torch": 1.1}}
    r["epoch_speedup"] = 42.0
    r["training"] = [{"device": "cuda", "n_train": 60000, "n_test": 10000, "epoch_time_s": 4.0,
                      "samples_per_s": 15000.0, "test_acc": 0.88}, {"device": "cpu", "error": "boom"}]
    r["problems"] = gpu_check.verdict(r)
    assert r["problems"] == ["training on cpu failed"]
    lines = gpu_check.targets(r)
    assert "cnn step batch 64 vs PyTorch CUDA: 2.50x (target <= 2.0x) NOT met" in lines
    assert "mlp step batch 512 vs PyTorch CUDA: 1.10x (target <= 1.3x) met" in lines
    assert any("42.0x" in x and "met" in x for x in lines)
    text = gpu_check.markdown(r)
    assert "FAIL: training on cpu failed" in text and "SYNTHETIC" in text and "| cuda | 60000 | 4.00 |" in text
    assert "cnn_b64_cuda_xpgrad_over_torch" in text


def test_synthetic_set_reads_like_fashion_mnist(tmp_path):
    root = gpu_check.write_synthetic_fashion_mnist(str(tmp_path / "fm"), sizes=(50, 20))
    train = datasets.load("fashion-mnist", "train", root=root, download=False)
    test = datasets.load("fashion-mnist", "test", root=root, download=False)
    assert train.images.shape == (50, 28, 28) and train.images.dtype == np.uint8
    assert test.labels.shape == (20,) and set(np.unique(test.labels)) <= set(range(10))
