"""The Solvimon SDK for the tests that drive ratecard through it, imported on first use.

Importing the SDK runs pydantic's `validate_call` over ~1,500 generated methods: about 5 s of CPU.
Imported at the top of the test modules, every test process (each xdist worker, every targeted
`pytest` run) paid that while collecting, whether or not it ran an SDK test. `sv`, `m` and
`errors` stand for `solvimon_python_sdk`, its `models` and its `exceptions`: the first attribute
read imports the real module, so only a process that runs an SDK test pays for it.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class _OnFirstUse(types.ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: types.ModuleType | None = None

    def _real(self) -> types.ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return self._module

    def __getattr__(self, attribute: str) -> Any:  # only for what the instance itself lacks
        if attribute.startswith("_"):  # what pytest's collection probes for (`_mock_name`, dunders): not the SDK's
            raise AttributeError(attribute)
        return getattr(self._real(), attribute)

    def __dir__(self) -> list[str]:
        return dir(self._real())


sv: Any = _OnFirstUse("solvimon_python_sdk")
m: Any = _OnFirstUse("solvimon_python_sdk.models")
errors: Any = _OnFirstUse("solvimon_python_sdk.exceptions")
