"""Engine state is per thread: grad mode and the default device (issue 11, item 1).

Training in threads must give bit-for-bit what the same runs give one after another, with a third
thread flipping ``no_grad`` on and off all the time; the direct tests force the interleavings with
events, so they fail deterministically if the state is shared.
"""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import autograd as ag
import backends
import nn
from backends.numpy_backend import NumpyBackend

STEPS = 200


@pytest.fixture
def fast_switching():
    """Make the interpreter switch threads every microsecond, so the runs really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _data(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64)
    return x, y


def _model(seed):
    ag.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))


def _train(model, opt_cls, lr, data, steps=STEPS):
    x, y = ag.tensor(data[0]), ag.tensor(data[1])
    opt = opt_cls(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return {k: v.numpy() for k, v in model.state_dict().items()}


def _evaluate(model, data, stop, results):
    x = ag.tensor(data[0])
    while not stop.is_set():
        with ag.no_grad():
            out = model(x)
        results.append((out.requires_grad, out.numpy()))
        with ag.enable_grad():        # flip the mode back and forth as fast as possible
            pass


def test_threaded_training_is_bit_identical_to_sequential(fast_switching):
    jobs = [(1, nn.optim.SGD, 0.1, _data(10)), (2, nn.optim.Adam, 0.01, _data(20))]
    expected = [_train(_model(seed), opt, lr, data) for seed, opt, lr, data in jobs]
    eval_model, eval_data = _model(3), _data(30)
    with ag.no_grad():
        eval_ref = eval_model(ag.tensor(eval_data[0])).numpy()

    models = [_model(seed) for seed, *_ in jobs]
    got, errors, evals = [None, None], [], []
    stop = threading.Event()

    def run(i):
        try:
            _, opt, lr, data = jobs[i]
            got[i] = _train(models[i], opt, lr, data)
        except BaseException as e:   # noqa: BLE001  (reported below)
            errors.append(e)

    trainers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    evaluator = threading.Thread(target=_evaluate, args=(eval_model, eval_data, stop, evals))
    evaluator.start()
    for t in trainers:
        t.start()
    for t in trainers:
        t.join()
    stop.set()
    evaluator.join()

    assert not errors, errors
    for want, have in zip(expected, got):
        assert want.keys() == have.keys()
        for k in want:
            assert want[k].tobytes() == have[k].tobytes(), k
    assert evals, "the evaluating thread never ran"
    for rg, out in evals:
        assert rg is False
        assert out.tobytes() == eval_ref.tobytes()
    assert ag.is_grad_enabled()


def test_no_grad_in_one_thread_does_not_switch_off_another():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def holder():
        with ag.no_grad():
            inside.set()
            checked.wait(5)
            seen["holder_enabled"] = ag.is_grad_enabled()
            seen["holder_records"] = (ag.tensor([1.0], requires_grad=True) * 2).requires_grad

    t = threading.Thread(target=holder)
    t.start()
    assert inside.wait(5)
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()                    # the other thread sits inside no_grad right now
    assert ag.is_grad_enabled() and y.requires_grad and y.creator is not None
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    checked.set()
    t.join()
    assert seen == {"holder_enabled": False, "holder_records": False}


def test_backward_in_one_thread_leaves_the_other_threads_mode_alone():
    in_backward, done = threading.Event(), threading.Event()
    seen = {}

    def pause(g):                        # runs inside the backward pass, where that thread's mode is off
        seen["worker_enabled_in_backward"] = ag.is_grad_enabled()
        in_backward.set()
        done.wait(5)

    def worker():
        x = ag.tensor([3.0], requires_grad=True)
        y = x * x
        y.register_hook(pause)
        y.sum().backward()
        seen["worker_grad"] = x.grad.numpy().tolist()
        seen["worker_enabled_after"] = ag.is_grad_enabled()

    t = threading.Thread(target=worker)
    t.start()
    assert in_backward.wait(5)
    seen["main_enabled"] = ag.is_grad_enabled()
    z = ag.tensor([1.0], requires_grad=True) * 5
    seen["main_records"] = z.creator is not None
    done.set()
    t.join()
    assert seen == {"worker_enabled_in_backward": False, "main_enabled": True, "main_records": True,
                    "worker_grad": [6.0], "worker_enabled_after": True}


def test_a_thread_started_inside_no_grad_records():
    seen = {}

    def child():
        seen["enabled"] = ag.is_grad_enabled()

    with ag.no_grad():
        t = threading.Thread(target=child)
        t.start()
        t.join()
    assert seen == {"enabled": True}


def test_set_grad_enabled_is_per_thread():
    flipped, checked = threading.Event(), threading.Event()
    seen = {}

    def child():
        with ag.set_grad_enabled(False):
            flipped.set()
            checked.wait(5)
            seen["child"] = ag.is_grad_enabled()

    t = threading.Thread(target=child)
    t.start()
    assert flipped.wait(5)
    seen["main"] = ag.is_grad_enabled()
    checked.set()
    t.join()
    assert seen == {"child": False, "main": True}


def test_default_device_is_per_thread_and_new_threads_start_on_cpu():
    other = NumpyBackend()                  # a second backend object stands in for a GPU
    ready, checked = threading.Event(), threading.Event()
    seen = {}

    def child_with_context():
        with ag.device(other):
            ready.set()
            checked.wait(5)
            seen["child_in_context"] = ag.zeros(2).device is other
        seen["child_after"] = backends.default_device() is backends.cpu

    def fresh_child():
        seen["fresh"] = backends.default_device() is backends.cpu and ag.ones(1).device is backends.cpu

    t = threading.Thread(target=child_with_context)
    t.start()
    assert ready.wait(5)
    seen["main_while_child_in_context"] = ag.zeros(2).device is backends.cpu
    checked.set()
    t.join()

    ag.set_default_device(other)
    try:
        assert ag.randn(3).device is other
        f = threading.Thread(target=fresh_child)
        f.start()
        f.join()
    finally:
        ag.set_default_device("cpu")
    assert seen == {"child_in_context": True, "child_after": True, "main_while_child_in_context": True,
                    "fresh": True}
    assert backends.default_device() is backends.cpu


@pytest.mark.skipif(not backends.cuda_available(), reason="needs a CUDA GPU")
def test_cuda_default_device_is_per_thread():
    seen = {}

    def child():
        seen["child"] = ag.zeros(1).device == "cpu"

    with ag.device("cuda"):
        assert ag.zeros(1).device == "cuda:0"
        t = threading.Thread(target=child)
        t.start()
        t.join()
    assert seen == {"child": True}


def test_concurrent_draws_from_the_shared_generator_neither_repeat_nor_lose_numbers(fast_switching):
    """Threads share the CPU generator; NumPy's lock makes each draw atomic, so the draws of two threads are
    exactly the sequential draws, in some interleaving."""
    n, size = 300, 64
    ag.manual_seed(123)
    sequential = [ag.randn(size).numpy().tobytes() for _ in range(2 * n)]
    ag.manual_seed(123)
    drawn = [[], []]

    def draw(i):
        for _ in range(n):
            drawn[i].append(ag.randn(size).numpy().tobytes())

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(drawn[0] + drawn[1]) == sorted(sequential)
