"""One module per page or action; each holds thin routes over the engine's data."""
