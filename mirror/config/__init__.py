"""Configuration: loading a run's settings (settings), their shape (model), what one value may
be (values), rules across keys (checks) and the named extra servers of ``[sources.NAME]``
(sources). Imports run one way: values <- model <- checks <- sources <- settings."""
