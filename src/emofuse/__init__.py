"""emofuse: multimodal emotion recognition with honest, speaker-independent evaluation."""

__version__ = "0.1.0"
