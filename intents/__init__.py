"""Text in, ranked intents out: normalisation, safety detection and matching.

This package never imports ``bot``; it reads only what it is given.
"""
