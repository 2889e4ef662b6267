"""The engine: pure Python that computes and raises; it never imports click or prints."""
