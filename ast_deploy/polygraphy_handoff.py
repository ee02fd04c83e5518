"""The old import path of the polygraphy hand-off, kept for hand-off folders already written.

A hand-off folder's ``load_audio.py`` (``polygraphy --data-loader-script``) imports
``audio_feeds`` from here in folders written before the hand-off moved to
:mod:`ast_deploy.parity.handoff`; new folders import it from there. Nothing else uses this module.
"""

from __future__ import annotations

from .parity.handoff import audio_feeds

__all__ = ["audio_feeds"]
