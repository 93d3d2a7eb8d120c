"""Exception types raised by the engine (all subclass the built-in kind a NumPy user expects)."""


class AxisError(ValueError, IndexError):
    """An axis argument out of range for the tensor's rank."""


class GraphError(RuntimeError):
    """Misuse of the graph: second backward without ``retain_graph``, in-place change of a saved tensor."""


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree.

    Attributes: ``input_index``, ``element`` (index tuple of the worst element),
    ``analytic``, ``numeric``.
    """

    def __init__(self, msg, input_index=None, element=None, analytic=None, numeric=None):
        super().__init__(msg)
        self.input_index = input_index
        self.element = element
        self.analytic = analytic
        self.numeric = numeric
