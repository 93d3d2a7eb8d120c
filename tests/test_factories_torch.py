"""PyTorch's factories, dtype names and ``torch.cuda`` on ``autograd``: results against torch where it is
installed (those tests skip without it), and torch-free checks of shapes, dtypes, ranges, seeding,
statistics and the errors that bad arguments raise."""
from __future__ import annotations

import builtins

import numpy as np
import pytest

import autograd as ag
import backends


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _dtype_name(dtype) -> str:
    """``"float32"`` for ``np.float32``, ``np.dtype("float32")`` and ``torch.float32`` alike."""
    s = str(dtype)
    return s[len("torch."):] if s.startswith("torch.") else np.dtype(dtype).name


def assert_like_torch(ours, theirs, values: bool = True) -> None:
    """Same shape and dtype, on the CPU, and (``values``) the same values to float32 rounding."""
    assert isinstance(ours, ag.Tensor), type(ours)
    assert tuple(ours.shape) == tuple(theirs.shape), (ours.shape, tuple(theirs.shape))
    assert _dtype_name(ours.dtype) == _dtype_name(theirs.dtype), (ours.dtype, theirs.dtype)
    assert ours.device == "cpu"
    if values:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


# (id, call): ``call(lib)`` builds the same thing with ``lib`` = autograd or torch
DETERMINISTIC = [
    ("zeros-ints", lambda t: t.zeros(2, 3)),
    ("zeros-tuple", lambda t: t.zeros((2, 3))),
    ("zeros-size", lambda t: t.zeros(size=(2, 3))),
    ("zeros-float64", lambda t: t.zeros(4, dtype=t.float64)),
    ("ones-list", lambda t: t.ones([3, 1], dtype=t.int32)),
    ("ones-size", lambda t: t.ones(size=(2,))),
    ("full-float", lambda t: t.full((2, 2), 1.5)),
    ("full-int", lambda t: t.full((3,), 7)),
    ("full-bool", lambda t: t.full((2,), True)),
    ("full-dtype", lambda t: t.full((2,), 7, dtype=t.float64)),
    ("eye", lambda t: t.eye(3)),
    ("eye-rect", lambda t: t.eye(2, 4)),
    ("eye-empty", lambda t: t.eye(0)),
    ("eye-long", lambda t: t.eye(3, dtype=t.long)),
    ("linspace", lambda t: t.linspace(0, 1, 5)),
    ("linspace-neg", lambda t: t.linspace(-2.5, 3, 7)),
    ("linspace-one", lambda t: t.linspace(3, 4, 1)),
    ("linspace-none", lambda t: t.linspace(0, 1, 0)),
    ("linspace-int", lambda t: t.linspace(0, 10, 5, dtype=t.int64)),
    ("linspace-double", lambda t: t.linspace(0, 1, 11, dtype=t.double)),
    ("linspace-0d", lambda t: t.linspace(t.tensor(0.0), t.tensor(2.0), 3)),
    ("logspace", lambda t: t.logspace(0, 2, 3)),
    ("logspace-base2", lambda t: t.logspace(0, 3, 4, base=2)),
    ("logspace-double", lambda t: t.logspace(-1, 1, 5, base=3.0, dtype=t.float64)),
    ("arange-end", lambda t: t.arange(5)),
    ("arange-float-end", lambda t: t.arange(5.0)),
    ("arange-float-step", lambda t: t.arange(1, 2.5, 0.5)),
    ("arange-tenths", lambda t: t.arange(0, 1, 0.1)),
    ("arange-down", lambda t: t.arange(10, 0, -3)),
    ("arange-empty", lambda t: t.arange(0, 0)),
    ("arange-dtype", lambda t: t.arange(-1, 1, 0.25, dtype=t.float64)),
    ("arange-int-as-float", lambda t: t.arange(3, dtype=t.float32)),
    ("tensor-ints", lambda t: t.tensor([1, 2, 3])),
    ("tensor-floats", lambda t: t.tensor([[1.0, 2.0]])),
    ("tensor-bool", lambda t: t.tensor([True, False])),
    ("tensor-dtype", lambda t: t.tensor([1, 2], dtype=t.float64)),
    ("tensor-scalar", lambda t: t.tensor(3.5)),
    ("zeros_like", lambda t: t.zeros_like(t.ones(2, 3, dtype=t.int16))),
    ("full_like", lambda t: t.full_like(t.zeros(2), 4.0)),
    ("full_like-dtype", lambda t: t.full_like(t.zeros(2), 4, dtype=t.uint8)),
]

RANDOM = [    # values differ between libraries: shape and dtype only
    ("empty", lambda t: t.empty(2, 3)),
    ("empty-size", lambda t: t.empty(size=(4,), dtype=t.int8)),
    ("empty_like", lambda t: t.empty_like(t.ones(3, dtype=t.float64))),
    ("rand", lambda t: t.rand(2, 3)),
    ("rand-size", lambda t: t.rand(size=(4,), dtype=t.float64)),
    ("randn-tuple", lambda t: t.randn((3, 1))),
    ("rand_like", lambda t: t.rand_like(t.zeros(2, dtype=t.float64))),
    ("randn_like", lambda t: t.randn_like(t.zeros(2, 2))),
    ("randint-high", lambda t: t.randint(10, (3,))),
    ("randint-low-high", lambda t: t.randint(2, 5, (2, 2))),
    ("randint-keywords", lambda t: t.randint(low=2, high=5, size=(3,))),
    ("randint-high-keyword", lambda t: t.randint(high=5, size=(3,))),
    ("randint-dtype", lambda t: t.randint(0, 10, (3,), dtype=t.float32)),
    ("randint_like", lambda t: t.randint_like(t.zeros(2), 5)),
    ("randint_like-int", lambda t: t.randint_like(t.zeros(2, dtype=t.int32), 1, 5)),
    ("randperm", lambda t: t.randperm(5)),
    ("randperm-dtype", lambda t: t.randperm(4, dtype=t.int32)),
    ("normal-floats", lambda t: t.normal(2.0, 3.0, (2, 3))),
    ("normal-floats-dtype", lambda t: t.normal(0.0, 1.0, size=(2,), dtype=t.float64)),
    ("normal-mean-tensor", lambda t: t.normal(t.zeros(3), 1.0)),
    ("normal-mean-only", lambda t: t.normal(t.zeros(3, dtype=t.float64))),
    ("normal-std-tensor", lambda t: t.normal(0.0, t.ones(2, 1))),
    ("normal-broadcast", lambda t: t.normal(t.zeros(3), t.ones(2, 1))),
]


@pytest.mark.parametrize("call", [c for _, c in DETERMINISTIC], ids=[i for i, _ in DETERMINISTIC])
def test_values_shapes_and_dtypes_match_torch(torch, call):
    assert_like_torch(call(ag), call(torch))


@pytest.mark.parametrize("call", [c for _, c in RANDOM], ids=[i for i, _ in RANDOM])
def test_random_shapes_and_dtypes_match_torch(torch, call):
    assert_like_torch(call(ag), call(torch), values=False)


def test_the_torch_comparison_sees_differences(torch):
    for ours, theirs in [(ag.zeros(2), torch.ones(2)), (ag.zeros(2), torch.zeros(3)),
                         (ag.zeros(2), torch.zeros(2, dtype=torch.float64)), (ag.arange(3), torch.arange(3.0))]:
        with pytest.raises(AssertionError):
            assert_like_torch(ours, theirs)


DTYPE_NAMES = ["float16", "half", "float32", "float", "float64", "double", "int8", "uint8", "int16", "short",
               "int32", "int", "int64", "long", "bool"]


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_names_match_torch(torch, name):
    assert _dtype_name(getattr(ag, name)) == _dtype_name(getattr(torch, name))
    assert _dtype_name(ag.zeros(2, dtype=getattr(ag, name)).dtype) == _dtype_name(getattr(torch, name))


def test_queries_match_torch(torch):
    for make in (lambda t: t.zeros(2, 3), lambda t: t.tensor(1.5), lambda t: t.arange(4),
                 lambda t: t.zeros(0, 5, dtype=t.float64), lambda t: t.tensor([True])):
        ours, theirs = make(ag), make(torch)
        assert ag.numel(ours) == torch.numel(theirs)
        assert ag.is_floating_point(ours) == torch.is_floating_point(theirs)
        assert ag.is_tensor(ours) and not ag.is_tensor(ours.numpy()) and not ag.is_tensor([1.0])


# --- without torch -----------------------------------------------------------------------------------

def test_dtype_names_without_torch():
    expected = {"float16": "float16", "half": "float16", "float32": "float32", "float": "float32",
                "float64": "float64", "double": "float64", "int8": "int8", "uint8": "uint8", "int16": "int16",
                "short": "int16", "int32": "int32", "int": "int32", "int64": "int64", "long": "int64",
                "bool": "bool", "bool_": "bool"}
    for name, dt in expected.items():
        assert np.dtype(getattr(ag, name)).name == dt, name
        assert name in ag.__all__, name
    assert builtins.float is float and builtins.int is int and builtins.bool is bool   # not touched
    assert not hasattr(ag, "bfloat16")      # NumPy has no bfloat16


SHAPES = [
    (lambda d: ag.empty(2, 3, device=d), (2, 3), "float32"),
    (lambda d: ag.empty((0, 4), dtype=ag.long, device=d), (0, 4), "int64"),
    (lambda d: ag.empty_like(ag.zeros(3, dtype=ag.float64, device=d)), (3,), "float64"),
    (lambda d: ag.eye(3, 2, device=d), (3, 2), "float32"),
    (lambda d: ag.linspace(0, 1, 4, device=d), (4,), "float32"),
    (lambda d: ag.logspace(0, 1, 4, dtype=ag.double, device=d), (4,), "float64"),
    (lambda d: ag.arange(2, 9, 3, device=d), (3,), "int64"),
    (lambda d: ag.arange(np.int64(4), device=d), (4,), "int64"),
    (lambda d: ag.arange(0, 1, 0.1, device=d), (10,), "float32"),
    (lambda d: ag.full(4, 2, device=d), (4,), "int64"),
    (lambda d: ag.full((2,), 2.5, device=d), (2,), "float32"),
    (lambda d: ag.zeros(size=(1, 2), device=d), (1, 2), "float32"),
    (lambda d: ag.ones(size=3, device=d), (3,), "float32"),
    (lambda d: ag.rand(size=(2, 2), device=d), (2, 2), "float32"),
    (lambda d: ag.rand(3, dtype=ag.half, device=d), (3,), "float16"),
    (lambda d: ag.randn(2, 5, device=d), (2, 5), "float32"),
    (lambda d: ag.randint(7, (3, 3), device=d), (3, 3), "int64"),
    (lambda d: ag.randint(-3, 3, size=(4,), dtype=ag.int8, device=d), (4,), "int8"),
    (lambda d: ag.randint_like(ag.zeros(2, 2, device=d), 1, 4), (2, 2), "float32"),
    (lambda d: ag.randperm(6, device=d), (6,), "int64"),
    (lambda d: ag.randperm(0, device=d), (0,), "int64"),
    (lambda d: ag.normal(1.0, 2.0, (2, 3), device=d), (2, 3), "float32"),
    (lambda d: ag.normal(ag.zeros(2, 1, dtype=ag.float64, device=d), ag.ones(3, device=d)), (2, 3), "float64"),
    (lambda d: ag.normal(ag.zeros((), device=d)), (), "float32"),
]


@pytest.mark.parametrize("k", range(len(SHAPES)))
def test_shapes_dtypes_and_devices(device, k):
    make, shape, dtype = SHAPES[k]
    t = make(device)
    assert t.shape == shape and t.dtype == np.dtype(dtype) and t.device == device
    assert not t.requires_grad and t.is_leaf


def test_the_default_dtype_and_requires_grad():
    old = ag.get_default_dtype()
    ag.set_default_dtype("float64")
    try:
        for t in (ag.linspace(0, 1, 3), ag.eye(2), ag.arange(0.5), ag.empty(2), ag.normal(0.0, 1.0, (2,)),
                  ag.logspace(0, 1, 2), ag.full((1,), 0.5)):
            assert t.dtype == np.float64
        assert ag.arange(3).dtype == np.int64 and ag.randint(3, (2,)).dtype == np.int64
    finally:
        ag.set_default_dtype(old)
    for t in (ag.linspace(0, 1, 3, requires_grad=True), ag.eye(2, requires_grad=True),
              ag.empty(2, requires_grad=True), ag.normal(0.0, 1.0, (2,), requires_grad=True),
              ag.arange(0.0, 1.0, 0.5, requires_grad=True)):
        assert t.requires_grad and t.is_leaf


def test_values_without_torch():
    np.testing.assert_allclose(ag.linspace(-1, 1, 5).numpy(), [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(ag.logspace(0, 3, 4, base=2).numpy(), [1, 2, 4, 8])
    np.testing.assert_array_equal(ag.eye(2, 3).numpy(), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(ag.empty(2, 2).numpy(), 0)          # documented: zero-filled
    np.testing.assert_array_equal(ag.arange(10, 0, -3).numpy(), [10, 7, 4, 1])
    assert ag.arange(0, 1, 0.1).shape == (10,) and ag.arange(1, 2.5, 0.5).numpy().tolist() == [1.0, 1.5, 2.0]
    assert ag.full((2,), True).numpy().tolist() == [True, True]
    assert ag.full((1,), ag.tensor(3)).dtype == np.int64
    x = ag.normal(ag.tensor([1.0, -2.0]), 0.0)                         # std 0: exactly the mean
    assert x.numpy().tolist() == [1.0, -2.0]


def _draws(device):
    return [ag.rand(3, device=device), ag.randn(3, device=device), ag.randint(100, (5,), device=device),
            ag.randperm(8, device=device), ag.normal(0.0, 1.0, (3,), device=device),
            ag.normal(ag.zeros(3, device=device), ag.ones(3, device=device)),
            ag.randint_like(ag.zeros(4, device=device), 50), ag.rand_like(ag.zeros(2, device=device))]


def test_manual_seed_makes_every_random_factory_repeat(device):
    ag.manual_seed(123)
    if device == "cuda":
        ag.cuda.manual_seed(123)
    first = [t.numpy() for t in _draws(device)]
    ag.manual_seed(123)
    if device == "cuda":
        ag.cuda.manual_seed(123)
    second = [t.numpy() for t in _draws(device)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    third = [t.numpy() for t in _draws(device)]                        # the stream moves on
    assert any(not np.array_equal(a, c) for a, c in zip(first, third))


def test_randperm_is_a_permutation(device):
    ag.manual_seed(1)
    for n in (0, 1, 2, 1000):
        p = ag.randperm(n, device=device).numpy()
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    assert not np.array_equal(ag.randperm(1000, device=device).numpy(), np.arange(1000))


def test_randint_stays_in_its_half_open_range(device):
    ag.manual_seed(2)
    x = ag.randint(-3, 4, (20000,), device=device).numpy()
    assert set(np.unique(x).tolist()) == set(range(-3, 4))           # every value, high excluded
    y = ag.randint(5, size=(1000,), device=device).numpy()
    assert y.min() >= 0 and y.max() < 5
    z = ag.randint_like(ag.zeros(1000, dtype=ag.int32, device=device), 10, 12).numpy()
    assert z.dtype == np.int32 and set(np.unique(z).tolist()) == {10, 11}
    r = ag.rand(20000, device=device).numpy()
    assert 0 <= r.min() and r.max() < 1 and abs(r.mean() - 0.5) < 0.02


def test_normal_has_the_requested_mean_and_std(device):
    ag.manual_seed(3)
    x = ag.normal(2.0, 3.0, (200000,), dtype=ag.float64, device=device).numpy()
    assert abs(x.mean() - 2.0) < 0.05 and abs(x.std() - 3.0) < 0.05   # standard errors: 0.007, 0.005
    mean = ag.tensor([[-5.0], [5.0]], device=device)
    std = ag.full((1, 50000), 0.5, device=device)
    y = ag.normal(mean, std).numpy()
    assert y.shape == (2, 50000)
    np.testing.assert_allclose(y.mean(axis=1), [-5.0, 5.0], atol=0.02)
    np.testing.assert_allclose(y.std(axis=1), [0.5, 0.5], atol=0.02)
    z = ag.randn(200000, device=device).numpy()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


def test_queries_without_torch():
    x = ag.zeros(2, 3)
    assert ag.is_tensor(x) and not ag.is_tensor(np.zeros(2)) and not ag.is_tensor(3.0)
    assert ag.numel(x) == 6 and ag.numel(ag.tensor(1.0)) == 1 and ag.numel(ag.zeros(0, 4)) == 0
    assert ag.is_floating_point(x) and ag.is_floating_point(ag.zeros(1, dtype=ag.half))
    assert not ag.is_floating_point(ag.arange(3)) and not ag.is_floating_point(ag.tensor([True]))
    for fn in (ag.numel, ag.is_floating_point):
        with pytest.raises(TypeError, match=fn.__name__):
            fn(np.zeros(2))


BAD_VALUES = [
    (lambda: ag.zeros(2, -1), r"zeros: sizes must be non-negative, got -1"),
    (lambda: ag.empty(2, -3), r"empty: sizes must be non-negative, got -3"),
    (lambda: ag.empty(size=(-2,)), r"empty: sizes must be non-negative, got -2"),
    (lambda: ag.full((-4,), 1.0), r"full: sizes must be non-negative, got -4"),
    (lambda: ag.eye(-1), r"eye: n must be non-negative, got -1"),
    (lambda: ag.eye(2, -5), r"eye: m must be non-negative, got -5"),
    (lambda: ag.linspace(0, 1, -1), r"linspace: steps must be non-negative, got -1"),
    (lambda: ag.logspace(0, 1, -2), r"logspace: steps must be non-negative, got -2"),
    (lambda: ag.arange(0, 10, 0), r"arange: step must be non-zero, got 0"),
    (lambda: ag.arange(5, 0), r"arange: the sign of step=1 points away from end=0"),
    (lambda: ag.arange(0, 5, -1), r"arange: the sign of step=-1 points away from end=5"),
    (lambda: ag.arange(0, float("inf")), r"arange: .*finite.*inf"),
    (lambda: ag.rand(3, -2), r"rand: sizes must be non-negative, got -2"),
    (lambda: ag.randint(5, 5, (2,)), r"randint: high must be greater than low.*low=5, high=5"),
    (lambda: ag.randint(5, 2, (2,)), r"randint: high must be greater than low.*low=5, high=2"),
    (lambda: ag.randint(0, (3,)), r"randint: .*low=0, high=0"),
    (lambda: ag.randint(3, (-1,)), r"randint: sizes must be non-negative, got -1"),
    (lambda: ag.randint_like(ag.zeros(2), 3, 1), r"randint_like: .*low=3, high=1"),
    (lambda: ag.randperm(-3), r"randperm: n must be non-negative, got -3"),
    (lambda: ag.normal(0.0, -1.0, (3,)), r"normal: std must be non-negative, got -1"),
    (lambda: ag.normal(ag.zeros(3), -2.0), r"normal: std must be non-negative, got -2"),
    (lambda: ag.normal(ag.zeros(3), ag.tensor([1.0, -0.5, 1.0])), r"normal: std must be non-negative.*-0\.5"),
    (lambda: ag.normal(ag.zeros(3), ag.ones(2)), r"normal: mean of shape \(3,\) and std of shape \(2,\)"),
]


@pytest.mark.parametrize("k", range(len(BAD_VALUES)))
def test_bad_values_raise_value_error_naming_the_function(k):
    call, message = BAD_VALUES[k]
    with pytest.raises(ValueError, match=message):
        call()


BAD_TYPES = [
    (lambda: ag.randint(10), r"randint: missing size"),
    (lambda: ag.randint(size=(2,)), r"randint: missing high"),
    (lambda: ag.randint(1, 2, (3,), low=0), r"randint: got low both"),
    (lambda: ag.randint(1.5, (2,)), r"randint: high must be an integer, got 1\.5"),
    (lambda: ag.normal(0.0, 1.0), r"normal: with a number mean and std, give size"),
    (lambda: ag.normal(ag.zeros(2), 1.0, (2,)), r"normal: size, dtype, device"),
    (lambda: ag.normal(ag.arange(3), 1.0), r"normal: mean and std tensors must be floating-point"),
    (lambda: ag.linspace(0, 1, 2.5), r"linspace: steps must be an integer, got 2\.5"),
    (lambda: ag.linspace("a", 1, 2), r"linspace: start must be a number"),
    (lambda: ag.arange(0, "ten"), r"arange: end must be a number, got 'ten'"),
    (lambda: ag.zeros((2, 3), size=(2, 3)), r"zeros: give the size positionally or as size=, not both"),
    (lambda: ag.randn(2, dtype=ag.int64), r"randn: random values need a floating-point dtype"),
    (lambda: ag.eye(2.0), r"eye: n must be an integer"),
]


@pytest.mark.parametrize("k", range(len(BAD_TYPES)))
def test_bad_types_raise_type_error_naming_the_function(k):
    call, message = BAD_TYPES[k]
    with pytest.raises(TypeError, match=message):
        call()


# --- ag.cuda -----------------------------------------------------------------------------------------

def test_cuda_namespace_answers_on_any_machine():
    assert ag.cuda.is_available() == ag.cuda_available()
    n = ag.cuda.device_count()
    assert isinstance(n, int) and (n > 0) == ag.cuda.is_available()
    ag.cuda.manual_seed(0)              # silently nothing without a GPU, as in PyTorch
    ag.cuda.manual_seed_all(0)
    if not ag.cuda.is_available():
        assert n == 0
        with pytest.raises(backends.DeviceError, match="not available"):
            ag.cuda.synchronize()
        with pytest.raises(backends.DeviceError, match="not available"):
            ag.cuda.current_device()
    else:
        assert ag.cuda.current_device() == 0
        ag.cuda.synchronize()
        ag.cuda.synchronize(0)
        with ag.device(f"cuda:{n - 1}"):
            assert ag.cuda.current_device() == n - 1
        with pytest.raises(backends.DeviceError, match="expected a CUDA device"):
            ag.cuda.synchronize("cpu")


@pytest.mark.skipif(not backends.cuda_available(), reason="CuPy or a CUDA GPU is not available")
def test_cuda_manual_seed_repeats_gpu_draws():
    for seed_fn in (ag.cuda.manual_seed, ag.cuda.manual_seed_all):
        seed_fn(7)
        a = ag.randn(5, device="cuda").numpy()
        seed_fn(7)
        np.testing.assert_array_equal(a, ag.randn(5, device="cuda").numpy())


def test_device_context_still_places_the_new_factories():
    with ag.device("cpu") as be:
        assert be == "cpu"
        for t in (ag.eye(2), ag.randint(3, (2,)), ag.linspace(0, 1, 2), ag.randperm(3), ag.empty(1)):
            assert t.device == "cpu"
