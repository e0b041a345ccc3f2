"""Lambda handlers: one module per function. Each does its init phase at import (module level)."""
