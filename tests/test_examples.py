"""The examples of examples/ run end to end (small sizes) and reach their targets."""
import numpy as np
import pytest

from examples import cs231n_lecture, gradient_descent_three_ways, logistic_regression, minibatch_gd


def test_gradient_descent_three_ways_agree():
    results = gradient_descent_three_ways.main(m=2000, n_epochs=1000, verbose=False)
    manual, autodiff, optimizer = (results[k][0] for k in ("manual", "autodiff", "optimizer"))
    np.testing.assert_allclose(autodiff, manual, atol=1e-5)
    np.testing.assert_allclose(optimizer, manual, atol=1e-5)


def test_minibatch_gradient_descent_converges():
    data, target = gradient_descent_three_ways.scaled_housing(2000)
    best = np.linalg.lstsq(data, target, rcond=None)[0]
    best_mse = np.mean((data @ best - target) ** 2)
    theta, mse = minibatch_gd.main(m=2000, n_epochs=20, verbose=False)
    assert mse < best_mse * 1.05


def test_logistic_regression_accuracy():
    assert logistic_regression.main(m=1000, n_epochs=60, verbose=False) > 0.95


def test_cs231n_lecture_programs_train():
    results = cs231n_lecture.main(steps=20, verbose=False)
    for losses in results.values():
        assert losses[-1] < losses[0]


def test_mlp_on_digits_reaches_97_percent():
    pytest.importorskip("sklearn")
    from examples import mlp_digits
    assert mlp_digits.main(n_epochs=15, verbose=False) >= 0.97


def test_exercise_9_12_checkpoints_resume_and_summaries(tmp_path):
    from examples import exercise_9_12_logistic_regression as ex
    assert ex.main(str(tmp_path), n_epochs=60, checkpoint_every=10, stop_after=25, verbose=False) is None
    assert (tmp_path / "my_logreg_model.ckpt.epoch").read_text() == "21"
    accuracy = ex.main(str(tmp_path), n_epochs=60, checkpoint_every=10, verbose=False)
    assert accuracy > 0.9
    assert (tmp_path / "my_logreg_model_final.safetensors").exists()
    assert not (tmp_path / "my_logreg_model.ckpt.epoch").exists()
    assert list((tmp_path / "logs").glob("*/events.out.tfevents.*"))


def test_exercise_10_9_deep_mlp_restores_and_reaches_accuracy(tmp_path):
    pytest.importorskip("sklearn")
    from examples import exercise_10_9_deep_mlp as ex
    assert ex.main(str(tmp_path), n_epochs=12, stop_after=4, verbose=False) is None
    assert ex.main(str(tmp_path), n_epochs=12, verbose=False) >= 0.95
