"""ssrl: self-supervised representation learning as mutual-information maximisation."""

__version__ = "0.1.0"
