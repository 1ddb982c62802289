"""The knowledge base: reviewed content files, their compiler and reader.

This package never imports ``bot``; council details reach it as plain
values (the placeholder names and their text).
"""
