"""Model providers: plugins that register model handlers (local defaults, scripted for tests)."""
