"""govfacts: Chinese local-government work reports -> a validated, versioned warehouse of facts."""

__version__ = "0.1.0"
