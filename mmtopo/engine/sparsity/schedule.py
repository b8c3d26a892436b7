"""When the sparsity penalty applies, and how strongly."""
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class LambdaSchedule:
    """``lambda_`` from step ``begin`` until before ``end`` (None: to the
    end of training), grown linearly from 0 over the first ``warmup``
    steps. A step is an iteration or an epoch, as the caller counts."""
    lambda_: float
    begin: int = 0
    end: Optional[int] = None
    warmup: int = 0

    def at(self, step: int) -> float:
        """lambda at ``step``."""
        if step < self.begin or (self.end is not None and step >= self.end):
            return 0.0
        if self.warmup > 0:
            return self.lambda_ * min(1.0,
                                      (step - self.begin + 1) / self.warmup)
        return self.lambda_
