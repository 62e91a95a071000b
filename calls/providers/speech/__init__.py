"""Speech stages for the cascaded provider: speech-to-text and text-to-speech, one module per vendor.

`base.py` is the interface every stage implements; `registry.py` (added with the cascaded provider) maps the
version's choices to classes.
"""
