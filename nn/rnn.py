"""Recurrent layers: RNN (tanh/relu), LSTM and GRU, multi-layer, and their single-step cells.

Parameter names, shapes and gate orders match PyTorch's: ``weight_ih_l{k}`` (G·H, in),
``weight_hh_l{k}`` (G·H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}``, gates i,f,g,o (LSTM) and r,z,n (GRU).

    RNN:  h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)
    LSTM: i,f,g,o = σ,σ,tanh,σ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh);  c' = f c + i g;  h' = o tanh(c')
    GRU:  r,z = σ(x W_ih,rzᵀ + b_ih,rz + h W_hh,rzᵀ + b_hh,rz);  n = tanh(x W_ih,nᵀ + b_ih,n + r (h W_hh,nᵀ + b_hh,n))
          h' = (1 − z) n + z h

Backpropagation through time is the engine's ordinary backward over the unrolled steps. The input
projection of all time steps is one matrix product; truncated BPTT is ``detach()`` of the carried state.
"""
from __future__ import annotations

import math

import autograd as ag
from autograd import Tensor

from .module import Module
from .parameter import Parameter

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _step(mode: str, gi: Tensor, h: Tensor, c, w_hh_t: Tensor, b_hh):
    """One time step from the input projection ``gi`` (bias b_ih included); returns (h', c')."""
    if mode == "GRU":
        gh = h @ w_hh_t
        if b_hh is not None:
            gh = gh + b_hh
        i_r, i_z, i_n = ag.chunk(gi, 3, dim=-1)
        h_r, h_z, h_n = ag.chunk(gh, 3, dim=-1)
        r = (i_r + h_r).sigmoid()
        z = (i_z + h_z).sigmoid()
        n = (i_n + r * h_n).tanh()
        return n + z * (h - n), None              # (1 − z) n + z h
    pre = gi + h @ w_hh_t                         # b_hh is folded into gi for RNN and LSTM
    if mode == "RNN_TANH":
        return pre.tanh(), None
    if mode == "RNN_RELU":
        return pre.relu(), None
    i, f, g, o = ag.chunk(pre, 4, dim=-1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _init_uniform(module: Module, hidden_size: int) -> None:
    """PyTorch's default: every weight and bias ~ U(−1/√H, 1/√H)."""
    k = 1.0 / math.sqrt(hidden_size)
    with ag.no_grad():
        for p in module.parameters():
            p.array[...] = p.device.rng.uniform(-k, k, p.shape).astype(p.dtype)
            p.mark_modified()


class RNNBase(Module):
    """Multi-layer recurrence over a sequence; ``mode`` is RNN_TANH, RNN_RELU, LSTM or GRU."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0):
        super().__init__()
        self.mode = mode
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{type(self).__name__}: input_size, hidden_size and num_layers must be positive, "
                             f"got {input_size}, {hidden_size}, {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        G = _GATES[self.mode]
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", Parameter(ag.zeros(G * hidden_size, n_in)))
            setattr(self, f"weight_hh_l{k}", Parameter(ag.zeros(G * hidden_size, hidden_size)))
            if bias:
                setattr(self, f"bias_ih_l{k}", Parameter(ag.zeros(G * hidden_size)))
                setattr(self, f"bias_hh_l{k}", Parameter(ag.zeros(G * hidden_size)))
        _init_uniform(self, hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s

    def _check_input(self, x: Tensor, hx):
        name = type(self).__name__
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input of rank 3 ((L, N, {self.input_size}) or "
                             f"(N, L, {self.input_size}) with batch_first) or 2 (unbatched), got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {x.shape[-1]} features (shape {x.shape}), "
                             f"expected input_size={self.input_size}")

    def _initial(self, hx, batch: int, like: Tensor, unbatched: bool):
        if hx is None:
            return ag.zeros(self.num_layers, batch, self.hidden_size, dtype=like.dtype, device=like.device)
        hx = self._input(hx, like, "initial state")
        if unbatched:
            hx = hx.unsqueeze(1)
        want = (self.num_layers, batch, self.hidden_size)
        if hx.shape != want:
            raise ValueError(f"{type(self).__name__}: initial state has shape {hx.shape}, expected {want}")
        return hx

    def forward(self, x: Tensor, hx=None):
        """Returns ``(output, h_n)``, or ``(output, (h_n, c_n))`` for LSTM."""
        x = self._input(x, self.weight_ih_l0)
        self._check_input(x, hx)
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        N = x.shape[1]
        lstm = self.mode == "LSTM"
        if lstm:
            h0, c0 = (None, None) if hx is None else hx
            h0 = self._initial(h0, N, x, unbatched)
            c0 = self._initial(c0, N, x, unbatched)
        else:
            h0 = self._initial(hx, N, x, unbatched)
        h_n, c_n = [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout and self.training:
                from .functional import dropout
                x = dropout(x, self.dropout, training=True)
            x, h, c = self._layer(k, x, h0[k:k + 1], c0[k:k + 1] if lstm else None)
            h_n.append(h)
            c_n.append(c)
        h_n = ag.cat(h_n, dim=0)
        if unbatched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        if lstm:
            c_n = ag.cat(c_n, dim=0)
            return x, (h_n, c_n.squeeze(1) if unbatched else c_n)
        return x, h_n

    def _layer(self, k: int, x: Tensor, h: Tensor, c):
        """One layer over all T steps of x (T, N, in); h, c are (1, N, H)."""
        w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
        b_ih = getattr(self, f"bias_ih_l{k}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_l{k}") if self.bias else None
        if self.bias and self.mode != "GRU":
            b_ih, b_hh = b_ih + b_hh, None          # both biases are outside the nonlinearity: fold them
        gates = ag.linear(x, w_ih, b_ih)            # all time steps in one product: (T, N, G·H)
        if self.mode in ("RNN_TANH", "RNN_RELU"):   # the fused time loop (autograd/ops/recurrent.py)
            out = ag.rnn_layer(gates, h[0], w_hh, "tanh" if self.mode == "RNN_TANH" else "relu")
            return out, out[-1:], None
        steps = ag.split(gates, 1, dim=0) if x.shape[0] > 1 else [gates]
        w_hh_t = w_hh.T
        outs = []
        for gi in steps:                            # each gi is (1, N, G·H): no reshape needed
            h, c = _step(self.mode, gi, h, c, w_hh_t, b_hh)
            outs.append(h)
        return ag.cat(outs, dim=0), h, c


class RNN(RNNBase):
    """Elman RNN, ``nonlinearity`` 'tanh' or 'relu': h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o (PyTorch's order)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout)


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n (PyTorch's order)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout)


class _CellBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.mode = mode
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = _GATES[self.mode]
        self.weight_ih = Parameter(ag.zeros(G * hidden_size, input_size))
        self.weight_hh = Parameter(ag.zeros(G * hidden_size, hidden_size))
        if bias:
            self.bias_ih = Parameter(ag.zeros(G * hidden_size))
            self.bias_hh = Parameter(ag.zeros(G * hidden_size))
        else:
            self.bias_ih = self.bias_hh = None
        _init_uniform(self, hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"

    def _prepare(self, x: Tensor, state):
        name = type(self).__name__
        x = self._input(x, self.weight_ih)
        for s in (state if isinstance(state, tuple) else (state,)):
            if s is not None:
                self._input(s, self.weight_ih, "state")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or ({self.input_size},), "
                             f"got {x.shape}")
        N = x.shape[0] if x.ndim == 2 else 1
        zero = ag.zeros(N, self.hidden_size, dtype=x.dtype, device=x.device)
        return x.reshape(N, self.input_size), zero

    def _gates(self, x: Tensor):
        b = self.bias_ih
        if b is not None and self.mode != "GRU":
            b = b + self.bias_hh
        return ag.linear(x, self.weight_ih, b), (self.bias_hh if self.mode == "GRU" else None)


class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias)

    def forward(self, x: Tensor, h=None) -> Tensor:
        squeeze = x.ndim == 1
        x, zero = self._prepare(x, h)
        h = zero if h is None else h.reshape(zero.shape)
        gi, b_hh = self._gates(x)
        h, _ = _step(self.mode, gi, h, None, self.weight_hh.T, b_hh)
        return h.reshape(self.hidden_size) if squeeze else h


class GRUCell(RNNCell):
    """One GRU step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        _CellBase.__init__(self, "GRU", input_size, hidden_size, bias)


class LSTMCell(_CellBase):
    """One LSTM step; returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__("LSTM", input_size, hidden_size, bias)

    def forward(self, x: Tensor, state=None):
        squeeze = x.ndim == 1
        x, zero = self._prepare(x, state)
        h, c = (zero, zero) if state is None else (state[0].reshape(zero.shape), state[1].reshape(zero.shape))
        gi, _ = self._gates(x)
        h, c = _step("LSTM", gi, h, c, self.weight_hh.T, None)
        if squeeze:
            return h.reshape(self.hidden_size), c.reshape(self.hidden_size)
        return h, c
