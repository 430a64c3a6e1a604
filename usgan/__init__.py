"""US-GAN: facial expression synthesis with an ultimate skip connection (arXiv 2112.13002)."""

__version__ = "0.1.0"
