"""The course's teaching aids (notebooks 01-08): exercise checkers, GRPO from scratch on the shared
pieces (``train/grpo.py``), watching one update, notebook helpers, views and plots. Nothing in the
pipeline imports from here.
"""
