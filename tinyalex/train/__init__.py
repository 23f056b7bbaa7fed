"""Training (section 5 of the paper): the learning rule, the schedule, the loop."""
from .sgd import SGD

__all__ = ["SGD"]
