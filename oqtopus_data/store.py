"""The old name of oqtopus_data.dataset, kept only until cli.py imports `Dataset` and `compact` from there.

Delete this module then: nothing else imports it.
"""

from __future__ import annotations

from .dataset import Dataset, compact

__all__ = ["Dataset", "compact"]
